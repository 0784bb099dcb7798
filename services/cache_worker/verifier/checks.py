"""The few facts two prompts must share exactly, whatever the model thinks: one table, read in order.

A model that reads meaning can still miss that "5 mg" is not "50 mg" or that `a < b` is not
`a <= b`: one token among many, and the answer turns on it. These checks are cheap, exact and
explainable; each refuses a candidate (the name is the refusal reason, a metric label) and says why
in the table. They compare what both prompts state, so a rewording passes and a changed value does
not. What they cannot read (a swapped name, an added qualifier, an antonym) is the model's job.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from services.cache_worker.verifier.text import normalized


def _equal(a: Counter[str], b: Counter[str]) -> bool:
    return a == b


@dataclass(frozen=True)
class Check:
    name: str  # the refusal reason
    reads: Callable[[str], Counter[str]]  # what of a prompt must agree with the other's
    why: str
    agree: Callable[[Counter[str], Counter[str]], bool] = _equal


# A number ends where its digits do: a unit written against it ("3:30pm", "2.5kg", "5mg") is not part of it,
# so "3:30pm" reads as "3:30 pm" does. Digits after letters ("v2", "python3.12") are numbers too.
_NUMBER = re.compile(
    r"(?<![\w.])\d+(?:[.,:]\d+)*(?:st|nd|rd|th)?(?![\d])"  # a number on its own, maybe a unit against it
    r"|(?<=[^\W\d_])\d+(?:[.,:]\d+)*"  # after letters: "v2", "python3.12"
    r"|\d+(?=[^\W\d_])"  # before letters, after an underscore
)
# A minus sign is a "-" (or U+2212) right before the digits, at the start or after a space, bracket or "=" (a "-"
# between two numbers or after a word is a range or a name: "3-5 days", "covid-19").
_MINUS = "-\u2212"
_BEFORE_SIGN = " \t\n([=,:"
_WORD = re.compile(r"[a-z]+")
# Counts written as words are numbers too ("two nights" is "2 nights"). "One" is a count as often as a
# pronoun ("which one", "one of"): it is kept apart (ONE) and stands for a 1 only where the other prompt
# has one ("by one day" / "by 1 day"). Ordinals ("first time") are left to the model.
ONE = "one"
NUMBER_WORDS = {
    "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
    "ten": "10", "eleven": "11", "twelve": "12", "thirteen": "13", "fourteen": "14", "fifteen": "15",
    "sixteen": "16", "seventeen": "17", "eighteen": "18", "nineteen": "19", "twenty": "20", "thirty": "30",
    "forty": "40", "fifty": "50", "sixty": "60", "seventy": "70", "eighty": "80", "ninety": "90",
    "hundred": "100", "thousand": "1000", "dozen": "12",
}  # fmt: skip


def numbers(text: str) -> Counter[str]:
    """Every number: digits (thousands separators and leading zeros dropped) and counts written as words."""
    text = normalized(text)
    found: Counter[str] = Counter()
    for match in _NUMBER.finditer(text):
        token = re.sub(r"(st|nd|rd|th)$", "", match.group())
        if text[match.end() : match.end() + 1] == "k" and not text[match.end() + 1 : match.end() + 2].isalpha():
            token = token.replace(",", "") + "000"  # "10k steps", "$50k": thousands
        if re.fullmatch(r"\d{1,3}(,\d{3})+", token):
            token = token.replace(",", "")
        sign = "-" if _signed(text, match.start()) else ""  # "-7 // 2" is not "7 // 2"
        found[sign + (token.lstrip("0") or "0")] += 1
    for word in _WORD.findall(text):
        if word in NUMBER_WORDS:
            found[NUMBER_WORDS[word]] += 1
        elif word == "one":
            found[ONE] += 1
    return found


def _signed(text: str, start: int) -> bool:
    """Whether the number starting at `start` has a minus sign."""
    return start >= 1 and text[start - 1] in _MINUS and (start == 1 or text[start - 2] in _BEFORE_SIGN)


def numbers_agree(a: Counter[str], b: Counter[str]) -> bool:
    """The same numbers, a word "one" counting as the 1 the other prompt writes in digits."""
    a, b = a.copy(), b.copy()
    for mine, theirs in ((a, b), (b, a)):
        taken = min(max(theirs["1"] - mine["1"], 0), mine[ONE])
        mine["1"] += taken
        mine[ONE] = 0
    return +a == +b


# Operators that only occur in code, longest first so "<=" is not read as "<"; a lone "<", ">", "=" or
# "!" counts only between (or before) operands: "a < b", "x=5", "!done", not "thanks!" or "Q&A".
_OPERATOR = re.compile(
    r"===|!==|==|!=|<=|>=|=>|->|::|\+\+|&&|\|\||<<|>>|\*\*|[-+*/%]=|(?<=[\w)\]] )[<>=](?= [\w(\[\"'])"
    r"|(?<=[\w)\]])[<>=](?=[\w(\[\"'])|(?:(?<=^)|(?<=[\s(]))!(?=[A-Za-z_(])"
)
_CODE_SPAN = re.compile(r"`([^`]+)`")
# Identifiers as code writes them, whatever the casing of the prompt: dotted names (os.path.join),
# calls (len()), snake_case. (camelCase is no sign: "iPhone" typed in lower case is the same question.)
_IDENTIFIER = re.compile(r"\b[A-Za-z_]\w+(?:\.[A-Za-z_]\w+)+\(?|\b\w+\(\)|\b[A-Za-z]+_[A-Za-z_\d]+\b")


def code(text: str) -> Counter[str]:
    """The code in a prompt: code spans, operators between operands, and identifiers."""
    found: Counter[str] = Counter()
    for span in _CODE_SPAN.findall(text):
        found[f"`{span.strip()}`"] += 1
    for match in _OPERATOR.finditer(text):
        found[match.group()] += 1
    for match in _IDENTIFIER.finditer(text):
        found[match.group().rstrip("(").casefold()] += 1
    return found


CHECKS: tuple[Check, ...] = (
    Check(
        "number_mismatch",
        numbers,
        "a number changes the answer: 5 mg or 50 mg, Python 3.8 or 3.12, 9:30 or 10:30",
        numbers_agree,
    ),
    Check("code_mismatch", code, "code is read exactly: a == b or a != b, list.append() or list.extend()"),
)


def first_disagreement(query: str, candidate: str, checks: tuple[Check, ...] = CHECKS) -> str | None:
    """The name of the first check on which the two prompts differ, or None."""
    for check in checks:
        if not check.agree(check.reads(query), check.reads(candidate)):
            return check.name
    return None
