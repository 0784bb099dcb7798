"""The exact checks and the normalized spelling: what must agree to the letter, and what is no difference."""

from __future__ import annotations

import pytest

from services.cache_worker.verifier.checks import CHECKS, code, first_disagreement
from services.cache_worker.verifier.text import normalized


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("What is the boiling point of water?", "what is the boiling point of water"),
        ("What is the boiling point of water?", "  What is the boiling point   of water ?!\n"),
        ("Why won't my “printer” connect?", 'why won\'t my "printer" connect'),
        ("Is 3.5 bigger than 3?", "is 3.5 bigger than 3?"),
    ],
)
def test_case_spaces_quotes_and_sentence_punctuation_are_no_difference(a: str, b: str) -> None:
    assert normalized(a) == normalized(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Is C++ hard to learn?", "Is C hard to learn?"),
        ("Is C# hard to learn?", "Is C hard to learn?"),
        ("What does 3.5 mean?", "What does 35 mean?"),
        ("What does x != y mean?", "What does x = y mean?"),
        ("Is it safe?", "Isn't it safe?"),
    ],
)
def test_symbols_inside_words_still_count(a: str, b: str) -> None:
    assert normalized(a) != normalized(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Convert 5 miles to km", "Convert 50 miles to km"),
        ("Is Python 3.8 still supported?", "Is Python 3.12 still supported?"),
        ("Book a table for two", "Book a table for three"),
        ("My flight leaves at 9:30", "My flight leaves at 10:30"),
        ("What happened in 1989?", "What happened in 1998?"),
        ("Take 200 mg of ibuprofen?", "Take 400 mg of ibuprofen?"),
        ("A room for one night", "A room for 2 nights"),
        ("Is 1 tablet enough?", "Is 2 tablets enough?"),
        ("The wire went out at 3:30pm", "The wire went out at 4:30pm"),
        ("Is python3.12 supported?", "Is python3.11 supported?"),
        ("What's the output of 7 // 2 in Python?", "What's the output of -7 // 2 in Python?"),  # a sign
        ("Is it icy at 5°C?", "is it icy at \u22125°C"),  # U+2212, the minus sign
    ],
)
def test_another_number_is_refused(a: str, b: str) -> None:
    assert first_disagreement(a, b) == "number_mismatch"


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Does walking 10,000 steps a day help?", "does walking 10000 steps a day help"),
        ("Does walking 10k steps a day help?", "Does walking 10,000 steps a day help?"),
        ("A table for two people", "a table for 2 people"),
        ("Which one is better?", "Which is better?"),  # "one" is no count
        ("What if I pay one day late?", "what if i pay 1 day late"),  # ... or the 1 of the other
        ("the 3rd of May", "May 3"),
        ("How do I reset my password?", "how can I reset my pasword"),
        # A unit written against the number is no part of it: "3:30pm" is "3:30 PM", "2.5kg" is "2.5 kg".
        ("It's 3:30 PM Eastern", "its 3:30pm eastern"),
        ("Can I carry 2.5 kg of cheese?", "can i carry 2.5kg of cheese"),
        ("Is Python 3.12 supported?", "is python3.12 supported"),
        ("A hotel for 3-5 days", "a hotel for 3 - 5 days"),  # a range, no sign
        ("Is x = -1 allowed?", "is x=-1 allowed"),
        ("A loss of -4,000 dollars", "a loss of -4000 dollars"),  # the sign kept, the separator dropped
    ],
)
def test_the_same_numbers_written_otherwise_agree(a: str, b: str) -> None:
    assert first_disagreement(a, b) is None


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("What does a < b return?", "What does a <= b return?"),
        ("Why is x == None wrong?", "Why is x != None wrong?"),
        ("How does list.append() work?", "How does list.extend() work?"),
        ("What does `git reset --hard` do?", "What does `git reset --soft` do?"),
        ("What does my_var do here?", "What does my_val do here?"),
    ],
)
def test_different_code_is_refused(a: str, b: str) -> None:
    assert first_disagreement(a, b) == "code_mismatch"


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Thanks! How do I log in?", "How do I log in?"),  # "!" in prose is no operator
        ("What is Q&A at AT&T?", "what is Q&A at AT&T"),
        ("My e-mail and/or km/h question", "my e-mail and/or km/h question"),
        ("Do you ship to P.O. boxes?", "do you ship to PO boxes"),
        ("Is Node.js fast?", "is node.js fast"),
        ("Does the iPhone 15 charge fast?", "does the IPHONE 15 charge fast"),
    ],
)
def test_prose_is_not_read_as_code(a: str, b: str) -> None:
    assert code(a) == code(b)


def test_every_check_says_why_it_exists() -> None:
    names = [check.name for check in CHECKS]
    assert len(names) == len(set(names))
    assert all(check.why and check.name.endswith("_mismatch") for check in CHECKS)
