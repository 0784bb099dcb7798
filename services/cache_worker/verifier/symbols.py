"""The operators and symbols of code-like text: in code, `3 // 2` and `3 / 2` are two questions.

Word features cannot see `//` against `/`, `>` against `<`, `'a'` against `"a"` or a missing
bracket, and an embedding model barely does (those pairs score 0.99). So when a text holds code
(operators, brackets, regex anchors, a call), the set of symbols in it must be the other's.

What counts, and what does not (prose has symbols too, and a paraphrase may drop them):
- Never: sentence punctuation (. , ? ! ; :), an apostrophe or a hyphen inside a word ("what's",
  "water-soluble", "2020-01-01"), markup (`backticks`, **bold**, *italic*), names with symbols
  (C++, C#, F#), a dash between words ("Python - sorting"), an aside of words in brackets ("(in
  Python)"), and quotes around words in a sentence (the word "ephemeral").
- Counted: operators (`//`, `==`, `<=`, `&&`, `->` ... and single = < > + - * / % ^ ~ | & \\ # $ @),
  brackets, and quotes that sit inside brackets or after an operator (`print('a')`, `x = "a"`,
  `{'a': 1}`): there the quote style is part of the code.
- A text is code-like when it has a symbol prose rarely has (= < > { } [ ] \\ | ^, a doubled operator),
  arithmetic between numbers or one-letter names (`3 + 4`, `x*2`), a call (`len(x)`, not "book(s)"),
  a regex end (`a+$`) or a shell variable (`$HOME`).

The same symbols are not yet the same code: `x = y` and `y = x`, `a[1:]` and `a[:1]`, `len(s)` and
`len(t)` have them all. So each stretch of code (symbols with the operands written against them or
beside an operator: numbers, one-letter names, `snake_case`, `camelCase`, `a.b`) is compared too,
spaces aside; the stretches may come in another order ("== and ===" / "=== and ==").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})
_EMPHASIS = re.compile(r"(?<![\w*])(\*{1,2})(?=[^\s*])([^*\n]*?[^\s*])\1(?![\w*])")
_NAMES_WITH_SYMBOLS = re.compile(r"(?i)(?<![\w+#])(?:c\+\+|notepad\+\+|[cfj]#)(?![\w+#])")
_INSIDE_WORD = re.compile(r"(?<=[A-Za-z0-9])['-](?=[A-Za-z0-9])")
_PROSE_DASH = re.compile(r"(?<=[A-Za-z]{2})\s+--?\s+(?=[A-Za-z]{2})")  # "Python - how do I sort"
_PROSE_ASIDE = re.compile(r"(?:(?<=\s)|^)\(([A-Za-z]+(?: [A-Za-z]+)+)\)")  # "what does x += 1 do (in Python)"
_QUOTED = re.compile(r"""(['"])[^'"\n]*?\1""")
_OPENERS, _CLOSERS = "([{", ")]}"
# Any character that may survive as a symbol: an apostrophe or hyphen only outside a word.
_MAYBE_SYMBOL = re.compile(
    r"""[=<>+*/%^~|&\\#$@()\[\]{}"`\u201c\u201d]|(?<![A-Za-z0-9])['\u2018\u2019-]|['\u2018\u2019-](?![A-Za-z0-9])"""
)

# Longest first, so "//" is one operator and not two slashes.
_OPERATORS = (
    "===", "!==", "**=", "//=", "<<=", ">>=",
    "//", "**", "==", "!=", "<=", ">=", "<<", ">>", "->", "=>", "&&", "||", "::", "++", "--",
    "+=", "-=", "*=", "/=", "%=", "|=", "&=", "^=", ":=",
)  # fmt: skip
_SINGLE = "=<>+-*/%^~|&\\#$@()[]{}'\""
_SYMBOL = re.compile("|".join(re.escape(op) for op in _OPERATORS) + "|[" + re.escape(_SINGLE) + "]")

_CODE_EVIDENCE = re.compile(
    r"[=<>{}\[\]\\|^]"
    r"|//|\*\*|&&|\+\+|::"
    r"|(?:\b\d+(?:\.\d+)?|(?<![\w.])[A-Za-z_]\b|[)\]])\s*[-+*/%]\s*(?:\d|[A-Za-z_]\b|[(\[])(?<!\d/\d)"
    r"|\b[A-Za-z_][\w.]*\((?!(?:s|es|ies)\))"  # a call; "book(s)" and "box(es)" are plurals
    r"|[+*?]\$|\$(?:[A-Za-z_]\w+|[a-z_]\b|[({])"  # "$B" is a billion dollars, "$HOME" and "$x" are variables
)


def _prose_quotes(text: str) -> list[int]:
    """Where the quote marks around words in a sentence are: outside brackets, after a word or at the start."""
    marks, depth, scanned = [], 0, 0
    for match in _QUOTED.finditer(text):
        start = match.start()
        between = text[scanned:start]
        depth += sum(between.count(c) for c in _OPENERS) - sum(between.count(c) for c in _CLOSERS)
        scanned = start
        before = text[:start].rstrip()[-1:]
        if depth <= 0 and (not before or before.isalnum() or before in ".,?!;:"):
            marks += [start, match.end() - 1]
    return marks


def _code_text(text: str) -> str:
    """The text with what is never a symbol blanked out (punctuation stays: the symbol regex skips it)."""
    text = text.translate(_QUOTES)
    text = _EMPHASIS.sub(r"\2", text).replace("`", " ")
    text = _NAMES_WITH_SYMBOLS.sub(" ", text)
    text = _PROSE_DASH.sub(" ", _INSIDE_WORD.sub(" ", text))
    text = _PROSE_ASIDE.sub(r" \1 ", text)
    chars = list(text)
    for i in _prose_quotes(text):
        chars[i] = " "
    return "".join(chars)


@dataclass(frozen=True)
class CodeSymbols:
    """Whether a text holds code, a formula or a pattern, its symbols (a set: a paraphrase may repeat
    one) and its numbers in order (`5 > 3` is not `3 > 5`, nor `2**3` `3**2`)."""

    code_like: bool
    symbols: frozenset[str]
    numbers: tuple[str, ...] = ()
    segments: frozenset[str] = frozenset()  # each stretch of code, without its spaces


_NO_CODE = CodeSymbols(False, frozenset())
_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])")
_SENTENCE_END = re.compile(r"[.,?!;:]+$")
_OPERATOR_ONLY = re.compile("(?:" + "|".join(re.escape(op) for op in _OPERATORS) + r"|[=<>+\-*/%^~|&\\])+")
# An operand standing apart from its operator ("x = y"): a number, a one-letter name, or a name that
# only code writes (snake_case, camelCase, a.b, x2); "the", "age" or "and" beside an operator are prose.
_OPERAND = re.compile(r"\d+(?:\.\d+)?|[A-Za-z]|[A-Za-z_]\w*(?:[_\d.]|[a-z][A-Z])[\w.]*")


def _segments(code: str) -> frozenset[str]:
    """The stretches of code in a text: runs of words that hold a symbol, with the operands on either
    side of a lone operator (a sentence's capital aside: lowercased)."""
    chunks = [_SENTENCE_END.sub("", chunk) for chunk in code.split()]
    symbolic = [_SYMBOL.search(chunk) is not None for chunk in chunks]
    operator = [_OPERATOR_ONLY.fullmatch(chunk) is not None for chunk in chunks]
    segments, run = set(), []
    for i, chunk in enumerate(chunks):
        beside_operator = (i > 0 and operator[i - 1]) or (i + 1 < len(chunks) and operator[i + 1])
        if chunk and (symbolic[i] or (beside_operator and _OPERAND.fullmatch(chunk) is not None)):
            run.append(chunk)
            continue
        if run:
            segments.add("".join(run).lower())
        run = []
    if run:
        segments.add("".join(run).lower())
    return frozenset(segments)


def code_symbols(text: str) -> CodeSymbols:
    if _MAYBE_SYMBOL.search(text) is None:  # most prompts: nothing but words and punctuation
        return _NO_CODE
    code = _code_text(text)
    return CodeSymbols(
        _CODE_EVIDENCE.search(code) is not None,
        frozenset(_SYMBOL.findall(code)),
        tuple(_NUMBER.findall(code)),
        _segments(code),
    )


def symbol_mismatch(a: CodeSymbols, b: CodeSymbols) -> bool:
    """One of the texts holds code and their symbols differ, or the same numbers stand in another order
    (other numbers are the number rule's to refuse), or a stretch of code differs."""
    if not (a.code_like or b.code_like):
        return False
    swapped = a.numbers != b.numbers and sorted(a.numbers) == sorted(b.numbers)
    return a.symbols != b.symbols or swapped or a.segments != b.segments
