"""The hit verifier on small handwritten pairs: the signals, the hard rules and the shipped model."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from services.cache_worker.verifier import ChainVerifier, HitVerifier, ThresholdVerifier, Verdict, build_verifier
from services.cache_worker.verifier.base import PromptVectors
from services.cache_worker.verifier.calibrated import CalibratedModel, CalibratedVerifier, hard_refusal
from services.cache_worker.verifier.context import context_disagreement
from services.cache_worker.verifier.features import (
    FEATURE_NAMES,
    directions,
    facts,
    is_typo,
    pair_features,
    stem,
    words,
)
from services.cache_worker.verifier.llm_judge import LlmJudgeVerifier
from services.cache_worker.verifier.symbols import CodeSymbols, code_symbols


@pytest.fixture(scope="module")
def verifier() -> CalibratedVerifier:
    return CalibratedVerifier(CalibratedModel.load())


def verify(
    verifier: HitVerifier, query: str, candidate: str, similarity: float, vectors: PromptVectors | None = None
) -> Verdict:
    return asyncio.run(verifier.verify(query, candidate, similarity, vectors))


# --- features -----------------------------------------------------------------------------------


def test_numbers_dates_and_ids_are_extracted() -> None:
    assert facts("Convert 5 miles to km").numbers == {"5"}
    assert facts("a $250,000 mortgage at 6%").numbers == {"250000", "6"}
    assert facts("What day was July 4, 1976?").numbers == {"4", "1976", "jul"}
    assert facts("status of invoice INV-20431").numbers == {"20431"}
    assert facts("a party of eight").numbers == {"8"}


def test_number_mismatch_only_when_both_sides_have_numbers() -> None:
    assert pair_features("convert 50 miles to km", "convert 5 miles to km", 0.97).number_mismatch
    one_side = pair_features("calories in a banana", "calories in 2 bananas", 0.9)
    assert not one_side.number_mismatch and one_side.number_one_side
    assert not pair_features("tip of 15 percent", "tip of 15%", 0.98).number_mismatch


def test_negation_and_polarity() -> None:
    assert pair_features("Which items are not allowed?", "Which items are allowed?", 0.95).negation_mismatch
    assert not pair_features("I can't log in", "I cannot log in", 0.99).negation_mismatch
    assert pair_features("Which foods are unsafe for dogs?", "Which foods are safe for dogs?", 0.97).polarity_mismatch
    assert pair_features("How do I decrease the font size?", "How do I increase the font size?", 0.95).polarity_mismatch
    assert pair_features("a query that excludes rows", "a query that includes rows", 0.96).polarity_mismatch


def test_antonyms_from_the_wordnet_lexicon() -> None:
    # Neither pair is in the handwritten list: they come from antonyms.txt.
    assert pair_features(
        "Is the lake deep near the dock?", "Is the lake shallow near the dock?", 0.93
    ).polarity_mismatch
    assert pair_features("why do planes ascend slowly", "why do planes descend slowly", 0.95).polarity_mismatch
    assert not pair_features("why do planes climb slowly", "why do planes ascend slowly", 0.95).polarity_mismatch
    # An indirect antonym: "polluted" is similar to "impure", the direct antonym of "pure".
    assert pair_features("Is the water in the lake polluted?", "Is the water in the lake pure?", 0.9).polarity_mismatch


def test_comparatives_of_antonyms() -> None:
    assert pair_features("Is the lake deeper in summer?", "Is the lake shallower in summer?", 0.95).polarity_mismatch
    assert pair_features("why are days longer in june", "why are days shorter in june", 0.93).polarity_mismatch
    assert pair_features("Which trains leave earlier?", "Which trains leave later?", 0.93).polarity_mismatch
    assert not pair_features("Which trains leave earlier?", "Which trains depart earlier?", 0.95).polarity_mismatch


def test_scope_words() -> None:
    order = pair_features("first item of a list in Go", "last item of a list in Go", 0.93)
    assert order.scope_swap and not order.scope_mismatch
    assert pair_features("vitamin D dose for adults", "vitamin D dose for children", 0.9).scope_swap
    assert pair_features("the fastest route to the airport", "the cheapest route to the airport", 0.9).scope_swap
    # Words for the same audience, or a plural, are no swap; a scope word on one side only is a narrower question.
    assert not pair_features("vitamin D dose for kids", "vitamin D dose for children", 0.95).scope_swap
    assert not pair_features("haircuts for man", "haircuts for men", 0.97).scope_swap
    added = pair_features("average of a column", "average of a column excluding blanks", 0.85)
    assert added.scope_mismatch and not added.scope_swap


def test_entities_units_and_typos() -> None:
    assert pair_features("reverse a list in Rust", "reverse a list in Python", 0.8).entity_mismatch
    assert not pair_features("what is a roth ira", "What is a Roth IRA?", 0.99).entity_mismatch
    assert pair_features("height in inches", "height in centimeters", 0.9).unit_mismatch
    assert is_typo("instal", "install") and is_typo("tyre", "tire")
    assert not is_typo("ethanol", "methanol") and not is_typo("austria", "australia")


@pytest.mark.parametrize(
    ("stored", "asked"),
    [
        ("How do I pair a Bluetooth mouse?", "how do I pair a bluetooth mouse"),
        ("Why is my Wi-Fi slow?", "Why is my WiFi slow?"),
        ("What does the U.N. do?", "What does the UN do?"),
        ("Can I write my CV in Word?", "Can I write my CV in Word?"),
        ("Where is the café in the Louvre?", "Where is the cafe in the Louvre?"),
        ("What does the WHO recommend for sleep?", "What does the World Health Organization recommend for sleep?"),
        ("Where can I buy Chrome extensions?", "Where can I buy Chrome extensions?"),
        ("Is the DOE funding fusion?", "Is the Department of Energy funding fusion?"),
        ("What are the EU's roaming rules?", "What are the EU roaming rules?"),
        ("How do I spell the word necessary?", "What's the spelling of necessary?"),
        ("How does a bill become law in the United States?", "How does a bill become a law in the US?"),
        ("On macOS, how do I install Node.js?", "How do I install Node.js on a Mac?"),
        (
            "How do I deep clone an object in JS with Postgres?",
            "How do I deep clone an object in JavaScript with PostgreSQL?",
        ),
    ],
)
def test_a_name_written_another_way_is_the_same_name(stored: str, asked: str) -> None:
    features = pair_features(asked, stored, 0.95)
    assert not features.entity_mismatch, features.differing


def test_names_that_are_everyday_words_count_when_capitalized() -> None:
    assert pair_features(
        "Export a table from Excel to Word", "Export a table from Excel to PowerPoint", 0.9
    ).entity_mismatch
    assert not facts("Go to the settings page").entities
    assert pair_features("What does the CIA do?", "What does the FBI do?", 0.9).entity_mismatch


def test_a_negating_prefix_is_a_negation() -> None:
    assert not pair_features("Which images are unused?", "Which images aren't used?", 0.95).negation_mismatch
    assert not pair_features("Which images are unused?", "Which images aren't used?", 0.95).polarity_mismatch
    assert pair_features("Which images are unused?", "Which images are used?", 0.95).polarity_mismatch
    assert pair_features("Which images are not used?", "Which images are used?", 0.95).negation_mismatch


@pytest.mark.parametrize(
    ("stored", "asked"),
    [
        ("What is the sales tax in the US?", "What is the sales tax in Utah state?"),
        ("What is the ROI of an MBA?", "What is the rate of inflation of an MBA?"),
    ],
)
def test_words_that_only_happen_to_spell_an_acronym_are_another_name(stored: str, asked: str) -> None:
    assert pair_features(asked, stored, 0.9).entity_mismatch


def test_a_spelled_out_acronym_still_differs_for_the_model() -> None:
    features = pair_features(
        "What does the World Heart Organization say about vaping?", "What does the WHO say about vaping?", 0.9
    )
    assert not features.entity_mismatch and {"world", "heart", "organization"} <= set(features.differing)


def test_a_negating_prefix_explains_only_a_word_one_side_has() -> None:
    # "display" holds "play", but it is in both texts: the "doesn't" is a real negation.
    stored, asked = "Why does the video play on my second display?", "Why doesn't the video play on my second display?"
    assert pair_features(asked, stored, 0.98).negation_mismatch


def test_a_long_token_is_an_id_that_must_agree() -> None:
    dna = "ATGGCCATTGTAATGGGCCGCTGAAAGGGTGCCCGATAG"
    features = pair_features(f"Translate this DNA: {dna[:-2]}TG", f"Translate this DNA: {dna}", 0.99)
    assert hard_refusal(features) == "number_mismatch"


def test_long_tokens_are_not_aligned_letter_by_letter() -> None:
    a, b = "G" * 1900 + "A", "G" * 1899 + "TA"
    started = time.perf_counter()
    pair_features(f"Is this sequence valid: {a}", f"Is this sequence valid: {b}", 0.99)
    assert time.perf_counter() - started < 0.2


def test_a_unit_written_two_ways_is_one_word() -> None:
    spelled = pair_features("Convert 5 miles to km", "convert 5 miles to kilometers", 0.95)
    assert (spelled.only_query, spelled.only_candidate, spelled.unit_mismatch) == (0, 0, False)
    swapped = pair_features("Convert 5 miles to km", "Convert 5 miles to cm", 0.95)
    assert swapped.unit_mismatch and swapped.differing == ("cm", "km")


def test_a_name_of_several_words_counts_once() -> None:
    drinks = pair_features(
        "How much caffeine is in a can of Red Bull?", "How much caffeine is in a can of Coca-Cola?", 0.8
    )
    assert (drinks.only_query, drinks.only_candidate) == (1, 1) and drinks.entity_mismatch
    assert hard_refusal(drinks) == "entity_mismatch"


def test_differing_words_ignore_filler_case_and_typos() -> None:
    near = pair_features("hey, how do i instal node.js on windows pls", "How do I install Node.js on Windows?", 0.95)
    assert (near.only_query, near.only_candidate) == (0, 0)
    swap = pair_features("side effects of acetaminophen", "side effects of ibuprofen", 0.72)
    assert (swap.only_query, swap.only_candidate) == (1, 1)


def test_technical_opposites_are_antonyms() -> None:
    # Neither WordNet's direct antonyms nor the general list had these.
    assert pair_features(
        "How do I undo the last git commit and discard the changes?",
        "How do I undo the last git commit and keep the changes?",
        0.98,
    ).polarity_mismatch
    assert pair_features(
        "How do I delete a git branch remotely?", "How do I delete a git branch locally?", 0.89
    ).polarity_mismatch
    assert pair_features("How do I deploy the frontend?", "How do I deploy the backend?", 0.9).polarity_mismatch
    assert pair_features("serialize a dataclass to JSON", "deserialize a dataclass to JSON", 0.95).polarity_mismatch


# --- code and symbols ------------------------------------------------------------------------------


def test_what_counts_as_a_symbol() -> None:
    assert code_symbols("What does this print in Python: print(3 // 2)").symbols == {"(", "//", ")"}
    assert code_symbols("Is this valid JSON: {'a': 1}").symbols == {"{", "'", "}"}  # quotes in code count
    # Sentence punctuation, apostrophes and hyphens in words, C++, markup and asides are no symbols.
    prose = code_symbols("What's the best (and cheapest) e-book on C++, for beginners?!")
    assert prose == CodeSymbols(False, frozenset())
    assert code_symbols("What does `x += 1` do (in Python)?").symbols == {"+="}
    assert code_symbols('What does the word "ephemeral" mean?') == CodeSymbols(False, frozenset())
    assert code_symbols("What does **kwargs mean?").code_like  # an operator, not bold text


def test_reading_code_stays_linear_on_long_odd_text() -> None:
    started = time.perf_counter()
    code_symbols("a." * 8000 + "=")  # a call pattern that restarted after every dot took seconds
    code_symbols("(x " * 3000)
    assert time.perf_counter() - started < 1.0


def test_prose_is_not_code() -> None:
    for text in (
        "How many cups are in 1/2 gallon?",
        "Is the store open 24/7?",
        "R&D spending of $5B in 2020",
        "Which book(s) should I read?",
        "Is 50% of 20 equal to 10?",
        "Python - how do I sort a list",
    ):
        assert not code_symbols(text).code_like, text


@pytest.mark.parametrize(
    ("stored", "asked", "similarity"),
    [
        ("What does this print in Python: print(3 // 2)", "What does this print in Python: print(3 / 2)", 0.9931),
        (
            "Explain the SQL query: SELECT * FROM users WHERE age > 30",
            "Explain the SQL query: SELECT * FROM users WHERE age < 30",
            0.9950,
        ),
        ("Is this valid JSON: {'a': 1}", 'Is this valid JSON: {"a": 1}', 0.9817),
        ("What does the regex ^a+$ match?", "What does the regex ^a*$ match?", 0.8463),
        ("Fix the bug: print('hello'", "Fix the bug: print(hello)", 0.9463),
        # The same symbols, other code.
        ("In Python, what does x = y do?", "In Python, what does y = x do?", 0.99),
        ("What does a[1:] return in Python?", "What does a[:1] return in Python?", 0.99),
        ("What does len(s) return?", "What does len(t) return?", 0.99),
        ("What does s.split(' ') return?", "What does s.split('') return?", 0.99),
        ("What does ' '.join(words) give?", "What does ''.join(words) give?", 0.99),
        ("What does f(x, y) return?", "What does f(xy) return?", 0.99),
        ("In Python: if total > limit", "In Python: if limit > total", 0.99),
        # Case counts in code (but for a sentence's capital), and so does the order of statements.
        ("Is `x = True` valid Python?", "Is `x = true` valid Python?", 0.99),
        ("In Python, after `x = y; y = x`, what is x?", "In Python, after `y = x; x = y`, what is x?", 0.99),
        # A part quoted apart must be the same part.
        ("What is `a[i]` after `a[i] = a[j]`?", "What is `a[j]` after `a[i] = a[j]`?", 0.99),
        # A string's closing quote is no possessive.
        ("Fix the syntax error: `msg = 'thanks' + name`", "Fix the syntax error: `msg = 'thanks + name`", 0.99),
        # In backticks every word is code.
        ("What does `x = a if b else c` give?", "What does `x = a if c else b` give?", 0.99),
        ("What does `result = a and b` give?", "What does `result = a or b` give?", 0.99),
        ("Why is `price - discount` negative?", "Why is `price + discount` negative?", 0.99),
        ("What does `sizeof (int)` return?", "What does `sizeof (long)` return?", 0.99),
        ("What does `print(ä)` print?", "What does `print(ö)` print?", 0.99),
    ],
)
def test_code_whose_symbols_differ_is_refused(
    verifier: CalibratedVerifier, stored: str, asked: str, similarity: float
) -> None:
    verdict = verify(verifier, asked, stored, similarity)
    assert (verdict.accept, verdict.reason) == (False, "symbol_mismatch")


def test_words_swapped_across_a_direction_are_refused(verifier: CalibratedVerifier) -> None:
    verdict = verify(verifier, "Convert 100 Celsius to Fahrenheit", "Convert 100 Fahrenheit to Celsius", 0.9914)
    assert (verdict.accept, verdict.reason) == (False, "order_swap")
    assert pair_features("Is a cat bigger than a dog?", "Is a dog bigger than a cat?", 0.97).order_swap
    assert pair_features("translate from English to French", "translate from French to English", 0.97).order_swap


@pytest.mark.parametrize(
    ("stored", "asked", "reason"),
    [
        ("Is 5 > 3?", "Is 3 > 5?", "symbol_mismatch"),
        ("What is 2**3?", "What is 3**2?", "symbol_mismatch"),
        ("What is 10 / 2?", "What is 2 / 10?", "symbol_mismatch"),
        ("Is 7 bigger than 9?", "Is 9 bigger than 7?", "order_swap"),
    ],
)
def test_the_same_numbers_in_another_order_are_refused(stored: str, asked: str, reason: str) -> None:
    assert hard_refusal(pair_features(asked, stored, 0.97)) == reason


def test_an_identifier_with_underscores_holds_no_direction() -> None:
    text = "is it faster to call to_iterable_dataset first"
    (only,) = directions(text, words(text))  # the "to" of "to call" only
    assert only.word == "to" and only.after == frozenset({stem("call"), stem("to_iterable_dataset")})
    assert directions("call to_iterable_dataset first", words("call to_iterable_dataset first")) == ()


def test_technical_opposites_are_refused(verifier: CalibratedVerifier) -> None:
    for stored, asked, similarity in (
        (
            "How do I undo the last git commit and keep the changes?",
            "How do I undo the last git commit and discard the changes?",
            0.9798,
        ),
        ("How do I delete a git branch locally?", "How do I delete a git branch remotely?", 0.8919),
    ):
        verdict = verify(verifier, asked, stored, similarity)
        assert (verdict.accept, verdict.reason) == (False, "polarity_mismatch")


@pytest.mark.parametrize(
    ("stored", "asked"),
    [
        ("What does print(3 // 2) print in Python?", "what does print(3 // 2) print in python"),
        ("What's the output of print(3 // 2)?", "What is the output of print(3 // 2)"),
        (
            "What's the difference between `==` and `is` in Python?",
            "what is the difference between == and is in python",
        ),
        ('What does "==" mean in JavaScript?', "What does == mean in JavaScript?"),
        ("Difference between == and === in JavaScript", "Difference between === and == in JavaScript"),
        ("What does x = x + 1 do (in Python)?", "In Python, what does x = x + 1 do?"),
        ("Python vs Java for backend development", "Java vs Python for backend development"),
        ("Pros and cons of Python and Java", "Pros and cons of Java and Python"),
        ('What does the word "ephemeral" mean?', "What's the meaning of the word 'ephemeral'?"),
        ("How do I convert a string to an int in Python?", "Python: how to convert string to int"),
        ("Flights from London to Paris", "Flights to Paris from London"),
        ("How do I sort a list in C++?", "how to sort a list in c++"),
        # Code against words: an article, a possessive or a sentence's capital is not code.
        ("Use the `list_datasets()` function to list datasets.", "The list_datasets() function lists datasets."),
        ("Iter_archive() yields the files of a TAR archive.", "Files of a TAR archive are yielded by iter_archive()."),
        ("The package's map() function batches examples.", "The map() function of the package batches examples."),
        # Spacing is not code: the same tokens, however they are spaced.
        ("Is {a: 1} valid?", "Is {a:1} valid?"),
        ("What does foo(a, b) return?", "What does foo(a,b) return?"),
        ("Explain lambda x: x * 2", "Explain lambda x:x*2"),
        ("Is x == None ok?", "Is x==None ok?"),
        ("count = count + 1 in Python", "count=count+1 in Python"),
        # Words of the sentence beside an operator, and asides in brackets, are not code.
        ("What does a >> operator do in C?", "What does the >> operator do in C?"),
        ("What does len(x) return (Python)?", "In Python, what does len(x) return?"),
        (
            "The parameters: - `df` the frame. - `schema` the schema.",
            "The parameters: - `df` the frame. - `schema` its schema.",
        ),
        # A list's bullet, a possessive, a dash before the question, one text quoting a part first.
        ("Explain this line:\n- `df.apply(f, axis=1)`", "How does df.apply(f, axis=1) work?"),
        ("What does pandas' `df.loc[df['age'] > 30]` return?", "In pandas, what does df.loc[df['age']>30] return?"),
        ("with open('a.txt') as f: - how does it close the file?", "How does with open('a.txt') as f: close the file?"),
        (
            "What do `*args` and `**kwargs` mean in `def f(*args, **kwargs):`?",
            "What does def f(*args,**kwargs): mean?",
        ),
        ("Why is `Integer a = 127, b = 127;` equal?", "Integer a=127, b=127; why equal?"),
        (
            "Serialized datasets load with `Dataset.load_from_disk()`.",
            "`Dataset.load_from_disk()` loads serialized datasets.",
        ),
        # Code in backticks on one side, written plainly on the other.
        ("What does `chmod 755 script.sh` do?", "explain chmod 755 script.sh"),
        ("What does `x = 'cats' if c else 'dogs'` assign?", "What does x='cats' if c else 'dogs' assign?"),
        ("What does `s = 'yes' + name` give?", "What does s='yes'+name give?"),
    ],
)
def test_paraphrases_pass_the_symbol_and_order_rules(stored: str, asked: str) -> None:
    features = pair_features(asked, stored, 0.95)
    assert not features.symbol_mismatch and not features.order_swap
    assert hard_refusal(features) is None


# --- a conversation's earlier turns --------------------------------------------------------------


def history(user: str, assistant: str = "Okay.") -> str:
    """Earlier turns as the cache embeds and stores them (keys.conversation)."""
    return f"user: {user}\nassistant: {assistant}"


@pytest.mark.parametrize(
    ("stored", "asked", "reason"),
    [
        ("A rectangle is 8 cm long and 5 cm wide.", "A rectangle is 8 cm long and 6 cm wide.", "number_mismatch"),
        (
            "My order #5521 arrived with a cracked lamp.",
            "My order #5522 arrived with a cracked lamp.",
            "number_mismatch",
        ),
        ("My flight to Rome is refundable.", "My flight to Rome is not refundable.", "negation_mismatch"),
        ("I'm flying to Paris next week.", "I'm flying to Rome next week.", "entity_mismatch"),
        ("My code computes 3 // 2.", "My code computes 3 / 2.", "symbol_mismatch"),
        ("I want to keep my local changes.", "I want to discard my local changes.", "polarity_mismatch"),
    ],
)
def test_histories_that_differ_where_it_matters_cannot_share_an_answer(stored: str, asked: str, reason: str) -> None:
    assert context_disagreement(history(asked), history(stored)) == f"context_{reason}"


@pytest.mark.parametrize(
    ("stored", "asked"),
    [
        ("My laptop will not turn on after the update.", "After the update my laptop does not power on."),
        ("I'm planning a trip to Kyoto in early April.", "Heading to Kyoto at the beginning of April."),
        ("I just started running three times a week.", "I've recently begun running 3 days a week."),
    ],
)
def test_a_reworded_history_may_share_an_answer(stored: str, asked: str) -> None:
    assert context_disagreement(history(asked), history(stored)) is None


def test_far_apart_histories_are_compared_on_the_hard_rules_only() -> None:
    # More than 12 content words apart, one side with a number: only numbers, negation, exclusion and
    # code are compared there, and a number on one side is no reason on its own.
    stored = (
        "user: My Dell laptop stopped powering on today. I bought it 2 years ago and it worked perfectly until now."
    )
    asked = "user: The Dell notebook I own refuses to boot this morning, although it had always run great for me."
    assert context_disagreement(asked, stored) is None


def test_the_assistant_turns_count_too() -> None:
    offer = "Would you like me to delete the {} archived emails?"
    assert (
        context_disagreement(
            history("My inbox is full.", offer.format(4212)), history("My inbox is full.", offer.format(212))
        )
        == "context_number_mismatch"
    )


# --- the calibrated verifier ---------------------------------------------------------------------


def test_a_changed_number_is_refused(verifier: CalibratedVerifier) -> None:
    verdict = verify(verifier, "convert 50 miles to km", "convert 5 miles to km", 0.97)
    assert (verdict.accept, verdict.reason) == (False, "number_mismatch")


def test_a_negation_is_refused(verifier: CalibratedVerifier) -> None:
    verdict = verify(verifier, "Which vitamins are not water-soluble?", "Which vitamins are water-soluble?", 0.98)
    assert (verdict.accept, verdict.reason) == (False, "negation_mismatch")


def test_a_swapped_name_or_antonym_is_refused(verifier: CalibratedVerifier) -> None:
    pixel = verify(verifier, "How do I factory reset my Pixel?", "How do I factory reset my iPhone?", 0.9)
    assert (pixel.accept, pixel.reason) == (False, "entity_mismatch")
    assert (
        verify(verifier, "How do I stop the service?", "How do I start the service?", 0.9).reason == "polarity_mismatch"
    )


def test_a_swapped_scope_is_refused(verifier: CalibratedVerifier) -> None:
    verdict = verify(verifier, "Flu vaccine dose for adults", "Flu vaccine dose for children", 0.93)
    assert (verdict.accept, verdict.reason) == (False, "scope_mismatch")
    for stored, asked in [
        (
            "What tires are best for driving in Canada in winter?",
            "What tires are best for driving in Canada in summer?",
        ),
        ("Recommend a chess book for beginners", "Recommend a chess book for experienced players"),
    ]:
        verdict = verify(verifier, asked, stored, 0.93)
        assert (verdict.accept, verdict.reason) == (False, "scope_mismatch")


@pytest.mark.parametrize(
    ("stored", "asked"),
    [
        # who it is for, and when, among more rewording than a plain swap
        ("Best Python books for complete beginners", "Best Python books for experienced developers"),
        ("Good stretches for seniors with stiff hips", "Good stretches for teenagers with stiff hips"),
        ("Until what time does the London Underground run on weekdays?", "How late does the Tube run at the weekend?"),
        (
            "How do I work out the annual interest on a car loan?",
            "How do I calculate the monthly interest on a car loan?",
        ),
        # a part against the whole
        ("Summarize the first chapter of Pride and Prejudice", "Give me a summary of the whole of Pride and Prejudice"),
        ("How much does the average wedding cost per guest?", "How much does the average wedding cost in total?"),
        (
            "How much is a MacBook Air in California before sales tax?",
            "How much is a MacBook Air in California including sales tax?",
        ),
    ],
)
def test_another_audience_time_or_extent_is_refused(verifier: CalibratedVerifier, stored: str, asked: str) -> None:
    verdict = verify(verifier, asked, stored, 0.9)
    assert not verdict.accept and verdict.reason in ("scope_mismatch", "polarity_mismatch")


def test_an_alias_hides_no_other_name() -> None:
    assert pair_features("What is the capital of the UK?", "What is the capital of the USA?", 0.9).entity_mismatch
    assert pair_features("Best pizza in North America", "Best pizza in the USA", 0.9).entity_mismatch


def test_superlatives_of_one_meaning_are_no_swap() -> None:
    features = pair_features(
        "What is the fastest way to learn Spanish?", "What is the quickest way to learn Spanish?", 0.97
    )
    assert not features.scope_swap and hard_refusal(features) is None
    assert pair_features("What is the fastest car?", "What is the cheapest car?", 0.9).scope_swap


def test_the_word_one_counts_only_as_a_number() -> None:
    assert facts("Combine two dicts into one in Python").numbers == facts("How do I merge two dictionaries?").numbers
    for pronoun in ("How can one publish a book?", "Which one is better?", "Read a file one line at a time"):
        assert not facts(pronoun).numbers, pronoun
    assert facts("How do I take a screenshot of just one window?").numbers == {"1"}


@pytest.mark.parametrize(
    ("stored", "asked"),
    [
        ("What's a good recipe for pancakes without eggs?", "How do I make pancakes at home?"),
        ("How do I make a caffeine-free energy drink at home?", "How do I make an energy drink at home?"),
        ("List all the US states in alphabetical order", "List all the US states except Alaska in alphabetical order"),
    ],
)
def test_ruling_a_thing_out_of_the_question_is_refused(verifier: CalibratedVerifier, stored: str, asked: str) -> None:
    for query, candidate in ((asked, stored), (stored, asked)):
        verdict = verify(verifier, query, candidate, 0.9)
        assert (verdict.accept, verdict.reason) == (False, "exclusion_mismatch")


def test_saying_no_to_a_thing_is_leaving_it_out() -> None:
    for stored, asked in [
        ("How do you get a job with no experience?", "How can I get a job without experience?"),
        ("Give me a 20 minute no-equipment home workout", "Give me a 20 minute home workout without equipment"),
        ("Pancakes without eggs", "Pancakes with no eggs"),
    ]:
        features = pair_features(asked, stored, 0.93)
        assert hard_refusal(features) is None, (asked, features)
    assert hard_refusal(pair_features("How do I make bread with no yeast?", "How do I make bread with yeast?", 0.95))


def test_two_known_words_a_typo_apart_differ() -> None:
    for stored, asked in [
        ("What is the chemical formula of sodium nitrate?", "What is the chemical formula of sodium nitrite?"),
        ("What does the enzyme lactase break down?", "What does the enzyme lactose break down?"),
    ]:
        assert pair_features(asked, stored, 0.9).differing, asked
    # a misspelling, and British and American spellings, are one word
    for stored, asked in [
        ("What is the difference between affect and effect?", "What is the difference between affect and efect?"),
        ("How do I change a bike tyre?", "How do I change a bike tire?"),
        ("What colour is the sky at the city centre?", "What color is the sky at the city center?"),
        ("How do I organise my files?", "How do I organize my files?"),
    ]:
        assert not pair_features(asked, stored, 0.9).differing, asked


def test_british_spellings_only_where_british_spellings_have_them() -> None:
    # "our", "oe", "ll" inside other words are no British spelling: two known words a typo apart.
    for stored, asked in [
        ("How much does a canoe weigh?", "How much does a cane weigh?"),
        ("How long do llamas live?", "How long do lamas live?"),
        ("What time does the mall open on Sunday?", "What time does the mal open on Sunday?"),
    ]:
        assert pair_features(asked, stored, 0.9).differing, asked
    for stored, asked in [
        ("Why is my neighbour so noisy?", "Why is my neighbor so noisy?"),
        ("What causes anaemia in women?", "What causes anemia in women?"),
        ("How do I enrol in a college course?", "How do I enroll in a college course?"),
        ("How many centimetres are in a metre?", "How many centimeters are in a meter?"),
        ("Why is my armour rusting?", "Why is my armor rusting?"),
    ]:
        assert not pair_features(asked, stored, 0.9).differing, asked


def test_words_the_signals_cannot_read_must_be_the_same(verifier: CalibratedVerifier) -> None:
    for stored, asked in [("Как приготовить борщ?", "Как приготовить плов?"), ("東京の人口は?", "大阪の人口は?")]:
        verdict = verify(verifier, asked, stored, 0.97)
        assert (verdict.accept, verdict.reason) == (False, "unread_text")
    assert verify(verifier, "Как приготовить борщ?", "Как приготовить борщ?", 1.0).accept
    # the same foreign word quoted in an English question: the rest is compared as usual
    quoted = pair_features("What does 'привет' mean?", "what does привет mean", 0.99)
    assert not quoted.unread_text and quoted.respelled
    assert pair_features("What does 'привет' mean?", "What does 'спасибо' mean?", 0.9).unread_text
    # Latin letters are read, accented or not, and Greek letters by their names, as English uses them
    assert facts("Wie weit ist es von Straße zu Ærø und Łódź?").unread == ()
    assert pair_features("What is π to 10 digits?", "What is pi to 10 digits?", 0.95).respelled
    assert pair_features("Is Cronbach's \u03b1 above 0.7?", "Is Cronbach's \u03b2 above 0.7?", 0.95).differing == (
        "alpha",
        "beta",
    )


def test_symbols_the_signals_cannot_read_must_agree(verifier: CalibratedVerifier) -> None:
    # Emoji and other symbols leave the words the same: "the same question", served as such.
    for stored, asked in [
        ("What does the 🍆 emoji mean?", "What does the 🍑 emoji mean?"),
        ("What does the ∫ symbol mean in math?", "What does the ∑ symbol mean in math?"),
        ("Convert 100 ¥ to dollars", "Convert 100 ₹ to dollars"),
    ]:
        features = pair_features(asked, stored, 1.0)
        assert not features.respelled and hard_refusal(features) == "unread_text", asked
    assert verify(verifier, "what does the 🙏 emoji mean", "What does the 🙏 emoji mean?", 0.95).accept
    assert hard_refusal(pair_features("Convert 100 € to dollars", "Convert 100 £ to dollars", 0.9)) != "unread_text"


def test_fixes_from_the_review_of_the_new_rules() -> None:
    # Python's try/except leaves nothing out; a loose word against a WordNet antonym is no swap among
    # rewording ("small"/"spacious"); "a senior developer" is experienced, not elderly; "hardest" and
    # "toughest" ask the same; a manner adverb is no qualifier.
    for stored, asked in [
        ("How do I use try except in Python?", "How do I handle exceptions in Python?"),
        ("How can I make a small apartment look bigger?", "How do I make a tiny apartment feel more spacious?"),
        ("Tips for a senior developer interview", "Tips for an experienced developer interview"),
        ("What is the hardest exam in the world?", "What is the toughest exam in the world?"),
        ("How do I tie a tie?", "How do I tie a tie properly?"),
    ]:
        features = pair_features(asked, stored, 0.9)
        assert hard_refusal(features) is None, (asked, features)


def test_keeping_what_is_not_lost_is_no_exclusion() -> None:
    assert not pair_features(
        "How do I undo my last git commit but keep the changes?",
        "How do I revert the most recent commit in git without losing my edits?",
        0.9,
    ).exclusion_mismatch


@pytest.mark.parametrize(
    ("stored", "asked"),
    [
        ("How do I cook rice?", "How do I cook rice in a microwave?"),
        ("What's the best laptop to buy right now?", "What's the best laptop to buy right now for gaming?"),
        ("Give me a meal plan for the week", "Give me a vegetarian meal plan for the week"),
        (
            "What's a typical salary for a software engineer?",
            "What's a typical starting salary for a software engineer?",
        ),
    ],
)
def test_one_added_qualifying_word_is_refused(verifier: CalibratedVerifier, stored: str, asked: str) -> None:
    for query, candidate in ((asked, stored), (stored, asked)):
        verdict = verify(verifier, query, candidate, 0.9)
        assert (verdict.accept, verdict.reason) == (False, "added_phrase")


def test_the_same_question_misspelled_is_served(verifier: CalibratedVerifier) -> None:
    # The embedding of a misspelled question drifts (0.75 here), the words do not.
    for stored, asked in [
        ("Can I receive a package at work?", "can i recieve a package at work"),
        ("What's the best way to freeze bananas?", "hey, Whats the best way to freez bananas? thanks"),
    ]:
        assert verify(verifier, asked, stored, 0.75) == Verdict(True, 1.0)
    # Names and numbers are compared exactly, and a misspelling is no word itself: one edit apart is
    # another country, another year, another thing; two unknown words may be anything.
    for stored, asked in [
        ("What is the capital of Iran?", "What is the capital of Iraq?"),
        ("Who won the World Cup in 2014?", "Who won the World Cup in 2018?"),
        ("What is the best way to bread chicken?", "What is the best way to break chicken?"),
        ("What is a desert?", "What is a dessert?"),
        ("What are alkanes?", "What are alkenes?"),
        ("How is a stalactite formed?", "How is a stalagmite formed?"),
        ("How does strcpy work in C?", "How does strncpy work in C?"),
        # misspellings of rarer words go to the model: "methanal" is a word too, if the lists miss it
        ("Why is my sourdough so dense?", "why is my sourdogh so dense"),
        ("How do I lower my cholesterol naturally?", "how do i lower my cholestrol naturally"),
        ("Is methanol toxic?", "Is methanal toxic?"),
    ]:
        assert not pair_features(asked, stored, 0.95).respelled, asked


@pytest.mark.parametrize(
    ("stored", "asked"),
    [
        ("Как приготовить борщ?", "Как приготовить плов?"),  # no word the tokens read: all "the same"
        ("東京の人口は?", "大阪の人口は?"),
        ("Hi!", "Thanks!"),  # greetings only: no question
        ("What is 5 squared?", "What is -5 squared?"),  # a sign is no misspelling
        ("Is 2^10 bigger than 1000?", "Is 2*10 bigger than 1000?"),
    ],
)
def test_respelled_needs_every_word_and_sign(stored: str, asked: str) -> None:
    for query, candidate in ((asked, stored), (stored, asked)):
        assert not pair_features(query, candidate, 0.9).respelled


def test_a_greeting_or_thanks_inside_the_question_is_a_word_of_it(verifier: CalibratedVerifier) -> None:
    # Greetings open a repeat and thanks close it; one asked about is the question's own word.
    for stored, asked in [
        ("How do you say thanks in Japanese?", "How do you say hello in Japanese?"),
        ("Is it rude not to say please in Japan?", "Is it rude not to say thanks in Japan?"),
        ("What is the origin of the word hello?", "What is the origin of the word thanks?"),
    ]:
        for query, candidate in ((asked, stored), (stored, asked)):
            assert not pair_features(query, candidate, 0.9).respelled, query
    for stored, asked in [
        ("How do I boil an egg?", "hi, how do I boil an egg please? thank you!"),
        ("Can you explain recursion in Python?", "hello hey can you please explain recursion in python thx"),
    ]:
        assert verify(verifier, asked, stored, 0.8) == Verdict(True, 1.0), asked


@pytest.mark.parametrize(
    ("stored", "asked"),
    [
        ("How does insurance work?", "How does life insurance work?"),
        ("How do I generate a number in Python?", "How do I generate a random number in Python?"),
        ("What is relativity?", "What is general relativity?"),
        ("How do I make bread?", "How do I make quick bread?"),
    ],
)
def test_a_word_of_the_question_is_no_greeting(stored: str, asked: str) -> None:
    # Filler beside a question ("in the world", "random thought") is a word of it here: not the same text.
    for query, candidate in ((asked, stored), (stored, asked)):
        assert not pair_features(query, candidate, 0.9).respelled


@pytest.mark.parametrize(
    ("stored", "asked"),
    [
        ("How do I install Node.js with sudo?", "How do I install Node.js without sudo?"),
        ("Plan a week of dinners that use chicken", "Plan a week of dinners that avoid chicken"),
        ("Show all orders that were cancelled", "Show all orders except cancelled ones"),
        ("Plan a day in Rome that includes the Colosseum", "Plan a day in Rome that skips the Colosseum"),
        ("Can my employer fire me if they give two weeks' notice?", "Can my employer fire me without giving notice?"),
    ],
)
def test_leaving_a_thing_out_is_refused(verifier: CalibratedVerifier, stored: str, asked: str) -> None:
    verdict = verify(verifier, asked, stored, 0.95)
    assert (verdict.accept, verdict.reason) == (False, "exclusion_mismatch")


@pytest.mark.parametrize(
    ("stored", "asked"),
    [
        ("How do I bake bread without yeast?", "How do I bake yeast-free bread?"),
        ("Paint for a bathroom without windows", "Paint for a windowless bathroom"),
        ("How do I mop a floor without leaving streaks?", "How do I mop a floor so it is streak-free?"),
        (
            "How can I work offline without downloading the files?",
            "How can I work offline without having to download the files?",
        ),
        ("How do I avoid merge conflicts in git?", "How do I prevent merge conflicts in git?"),
    ],
)
def test_leaving_a_thing_out_in_other_words_is_no_exclusion(stored: str, asked: str) -> None:
    assert not pair_features(asked, stored, 0.95).exclusion_mismatch


def test_opposite_prefixes_and_antonyms_among_other_rewording_are_refused(verifier: CalibratedVerifier) -> None:
    assert pair_features("Is hyperthyroidism genetic?", "Is hypothyroidism genetic?", 0.95).polarity_mismatch
    # Five differing words: more than a plain swap rule reads, but "inhale"/"exhale" is no paraphrase.
    breath = verify(
        verifier, "Should a runner exhale through the mouth?", "Do runners inhale via the nose or mouth?", 0.9
    )
    assert (breath.accept, breath.reason) == (False, "polarity_mismatch")
    # Antonyms paraphrases trade ("with no"/"without", "good"/"bad") do not count among other rewording.
    assert not pair_features(
        "What's a good way to learn Spanish with no money?", "Cheapest method to pick up Spanish without spending", 0.9
    ).strong_polarity


@pytest.mark.parametrize(
    ("stored", "asked"),
    [
        ("How do I count the words in a file?", "How do I count the words in a file, ignoring blank lines?"),
        (
            "What is the capital gains tax rate in Canada?",
            "What is the capital gains tax rate in Canada for shares held by a corporation?",
        ),
        (
            "How do I sort a dict by value in Python?",
            "In Python, how do I sort a dict by value while breaking ties alphabetically by key?",
        ),
    ],
)
def test_an_added_qualifying_phrase_is_refused(verifier: CalibratedVerifier, stored: str, asked: str) -> None:
    for query, candidate in ((asked, stored), (stored, asked)):
        verdict = verify(verifier, query, candidate, 0.95)
        assert (verdict.accept, verdict.reason) == (False, "added_phrase")


def test_a_question_turned_around_is_no_antonym_swap() -> None:
    for stored, asked in [
        ("How can I make my laptop faster?", "How do I fix my slow old laptop?"),
        ("How do I keep my tea hot for hours?", "How do I stop my tea from getting cold for hours?"),
    ]:
        features = pair_features(asked, stored, 0.9)
        assert features.strong_polarity and hard_refusal(features) is None


def test_keeping_a_thing_away_in_other_words_is_no_exclusion() -> None:
    assert not pair_features(
        "How do I avoid sunburn at the beach?", "How do I prevent sunburn at the beach?", 0.95
    ).exclusion_mismatch
    assert not pair_features(
        "How do I avoid injury when running?", "How do I lower my injury risk when running?", 0.9
    ).exclusion_mismatch


def test_added_filler_is_no_qualifier() -> None:
    assert not pair_features(
        "Hey, quick question: how do I reset my router?", "How do I reset my router?", 0.97
    ).added_phrase
    assert not pair_features("What is the biggest ocean in the world?", "What is the biggest ocean?", 0.95).added_phrase


def test_paraphrases_and_near_repeats_are_accepted(verifier: CalibratedVerifier) -> None:
    water = "What is the boiling point of water at sea level?"
    reworded = verify(
        verifier, "how can I make my laptop battery last longer", "tips to extend laptop battery life", 0.85
    )
    assert reworded.score > 0.8  # likely the same; served unless the setting asks for more certainty
    assert verify(verifier, "how do i reset my router??", "How do I reset my router?", 0.97).accept
    assert verify(verifier, "Can you please explain recursion?", "Can you explain recursion?", 0.99).accept
    assert verify(verifier, water, water, 1.0) == Verdict(True, 1.0)


def test_a_swap_of_one_unknown_word_is_doubted(verifier: CalibratedVerifier) -> None:
    # Without the prompt vectors, one word for another looks like an antonym or a name no list
    # knows (the model learnt from such look-alikes): a paraphrase like this one is refused too.
    swap = verify(
        verifier,
        "At sea level, what temperature does water boil at?",
        "What is the boiling point of water at sea level?",
        0.909,
    )
    assert (swap.accept, swap.reason) == (False, "differing_words")


def test_a_long_prompt_hits_exactly_only(verifier: CalibratedVerifier) -> None:
    document = "Summarize this report. " + "The quarterly numbers were steady. " * 150
    assert verify(verifier, document, document, 1.0).accept
    verdict = verify(verifier, document + " And the outlook?", document, 0.999)
    assert (verdict.accept, verdict.reason) == (False, "prompt_too_long")


def test_unrelated_text_is_refused(verifier: CalibratedVerifier) -> None:
    # (their real cosine is about 0.1: the pre-filter never even asks the verifier)
    verdict = verify(
        verifier, "How do I bake sourdough bread?", "What is the boiling point of water at sea level?", 0.1
    )
    assert (verdict.accept, verdict.reason) == (False, "low_similarity")


def test_the_setting_trades_hits_for_safety() -> None:
    model = CalibratedModel.load()
    pair = ("What makes the sky appear blue during the day?", "Why is the sky blue?", 0.86)
    score = verify(CalibratedVerifier(model), *pair).score
    assert verify(CalibratedVerifier(model, min_probability=max(score - 0.01, 0)), *pair).accept
    strict = verify(CalibratedVerifier(model, min_probability=min(score + 0.01, 1)), *pair)
    assert not strict.accept and strict.reason


def test_hard_rules_name_the_reason() -> None:
    assert hard_refusal(pair_features("calories in a dozen bananas", "calories in a banana", 0.88)) == "number_mismatch"
    assert hard_refusal(pair_features("cost per year", "cost per month", 0.9)) == "unit_mismatch"
    assert hard_refusal(pair_features("Why is the sky blue?", "why is the sky blue", 0.99)) is None


# --- the chain, the factory and the judge -----------------------------------------------------------


class Refuse(HitVerifier):
    def __init__(self) -> None:
        self.seen: list[PromptVectors | None] = []

    async def verify(
        self, query: str, candidate: str, similarity: float, vectors: PromptVectors | None = None
    ) -> Verdict:
        self.seen.append(vectors)
        return Verdict(False, 0.0, "nope")


def test_chain_stops_at_the_first_refusal() -> None:
    refuse = Refuse()
    vectors = ([1.0, 0.0], [0.0, 1.0])
    assert verify(ChainVerifier([ThresholdVerifier(), refuse]), "a", "b", 0.9, vectors).reason == "nope"
    assert refuse.seen == [vectors]  # the prompt vectors reach every verifier in the chain
    assert verify(ChainVerifier([ThresholdVerifier(), ThresholdVerifier()]), "a", "b", 0.9).accept


# --- the model that also weighs the prompt vectors ----------------------------------------------------


def tiny_model(embedding_weights: list[float]) -> CalibratedModel:
    """A hand-made model over 2-dimensional vectors: the explainable part accepts anything similar."""
    n = len(FEATURE_NAMES)
    explainable: dict[str, Any] = {"weights": [0.0] * n, "intercept": 3.0, "mean": [0.0] * n, "scale": [1.0] * n}
    with_vectors = {
        "weights": [0.0] * n + embedding_weights,
        "intercept": 3.0,
        "mean": [0.0] * (n + 2),
        "scale": [1.0] * (n + 2),
        "embedding_dim": 2,
        "default_min_probability": 0.5,
    }
    return CalibratedModel.from_dict(
        {
            "features": list(FEATURE_NAMES),
            **explainable,
            "default_min_probability": 0.5,
            "with_embeddings": with_vectors,
        }
    )


def test_the_prompt_vectors_are_weighed_when_given() -> None:
    # A pair that differs along the first dimension is refused, but only by the model that sees the vectors.
    verifier = CalibratedVerifier(tiny_model([-10.0, 0.0]))
    pair = ("How do I make cold brew?", "What is the way to make cold brew?", 0.95)
    assert verify(verifier, *pair).accept
    assert verify(verifier, *pair, ([0.6, 0.8], [0.6, 0.8])).accept
    refused = verify(verifier, *pair, ([1.0, 0.0], [0.0, 1.0]))
    assert not refused.accept and refused.score < 0.5
    # Vectors of another embedding model (another dimension) fall back to the explainable model.
    assert verify(verifier, *pair, ([1.0, 0.0, 0.0], [0.0, 1.0, 0.0])).accept


def test_the_shipped_model_has_both_parts() -> None:
    model = CalibratedModel.load()
    assert model.with_embeddings is not None and model.with_embeddings.embedding_dim == 384
    assert 0 < model.default_min_probability < 1 and 0 < model.with_embeddings.default_min_probability < 1
    same = [1.0] + [0.0] * 383
    # a reworded pair, so the model decides (the same words respelled would be served without it)
    asked, stored = "What makes the sky blue?", "Why is the sky blue?"
    assert not pair_features(asked, stored, 0.99).respelled
    verdict = verify(CalibratedVerifier(model), asked, stored, 0.99, (same, same))
    assert verdict.accept and verdict.score < 1.0


def test_factory_builds_from_settings() -> None:
    assert isinstance(build_verifier("calibrated"), CalibratedVerifier)
    assert isinstance(build_verifier("threshold"), ThresholdVerifier)
    assert isinstance(build_verifier("calibrated,llm_judge", judge_base_url="http://127.0.0.1:9/v1"), ChainVerifier)
    with pytest.raises(ValueError, match="unknown verifier"):
        build_verifier("magic")


class FakeCompletions:
    def __init__(self, reply: str | None, delay: float = 0.0, error: Exception | None = None) -> None:
        self.reply, self.delay, self.error = reply, delay, error

    async def create(self, **_: object) -> object:
        await asyncio.sleep(self.delay)
        if self.error is not None:
            raise self.error
        message = type("M", (), {"content": self.reply})()
        return type("R", (), {"choices": [type("C", (), {"message": message})()]})()


class FakeClient:
    def __init__(self, completions: FakeCompletions) -> None:
        self.chat = type("Chat", (), {"completions": completions})()

    async def close(self) -> None:
        pass


def judge(completions: FakeCompletions, timeout: float = 0.5) -> LlmJudgeVerifier:
    return LlmJudgeVerifier(FakeClient(completions), "judge", timeout)  # type: ignore[arg-type]


def test_llm_judge_accepts_only_a_clear_yes_in_time() -> None:
    assert verify(judge(FakeCompletions("YES")), "a", "b", 0.9).accept
    assert verify(judge(FakeCompletions("No.")), "a", "b", 0.9).reason == "judge_refused"
    assert verify(judge(FakeCompletions("YES", delay=0.2), timeout=0.05), "a", "b", 0.9).reason == "judge_timeout"
    assert verify(judge(FakeCompletions(None, error=RuntimeError("down"))), "a", "b", 0.9).reason == "judge_error"
