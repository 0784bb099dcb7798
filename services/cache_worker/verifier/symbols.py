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
`len(t)` have them all. So each stretch of code is compared too, as a sequence of tokens (spacing
never matters: `{a: 1}` is `{a:1}`): symbols, string literals (whole: `' '` is not `''`), what
sits inside brackets or is written against a symbol, and the words on either side of an operator
in the same sentence, unless they are the sentence's ("a >> operator", "between == and ===").
Stretches may come in another order ("== and ===" / "=== and =="), and a sentence's capital
is no name ("Iter_archive()").
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
    """Where the quote marks around words in a sentence are: outside brackets, after a word or at the start,
    and not a string the code goes on to use (`' '.join(words)`)."""
    marks, depth, scanned = [], 0, 0
    for match in _QUOTED.finditer(text):
        start = match.start()
        between = text[scanned:start]
        depth += sum(between.count(c) for c in _OPENERS) - sum(between.count(c) for c in _CLOSERS)
        scanned = start
        before = text[:start].rstrip()[-1:]
        after = text[match.end() : match.end() + 2]
        used = len(after) == 2 and after[0] in ".[(" and (after[1].isalnum() or after[1] in "_'\"])")  # ' '.join
        if depth <= 0 and not used and (not before or before.isalnum() or before in ".,?!;:"):
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
    segments: frozenset[str] = frozenset()  # each stretch of code, as its tokens (spacing aside)


_NO_CODE = CodeSymbols(False, frozenset())
_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])")
# Code read as tokens, so spacing never matters: string literals whole, names (with dots: `os.path`),
# numbers, operators (longest first), brackets, and commas and colons (code only inside brackets).
_TOKEN = re.compile(
    r"""'[^'\n]*'|"[^"\n]*"|[A-Za-z_][\w.]*\w|[A-Za-z_]|\d+(?:\.\d+)?|"""
    + "|".join(re.escape(op) for op in _OPERATORS)
    + "|["
    + re.escape(_SINGLE)
    + ",:]"
)
_NAME_OR_NUMBER = re.compile(r"[A-Za-z_\d]")
# Words beside an operator that are the sentence's, not the code's ("a += operator", "between == and ===").
_PROSE_WORDS = frozenset(
    "a an the and or not in on of to for from with by as at vs versus than between is are was were be do does did"
    " what how why when which who this that these those it its i you we my your use using mean means".split()
)
_SYMBOLIC = ("operator", "bracket", "string")
_SENTENCE_BREAK = re.compile(r"[.?!;\n]")


@dataclass(frozen=True, slots=True)
class _Token:
    text: str
    start: int
    end: int
    depth: int  # brackets open around it
    kind: str  # string, punctuation, bracket, operand or operator


def _kind(text: str) -> str:
    if text[0] in "'\"" and len(text) > 1:
        return "string"
    if text in ",:":
        return "punctuation"
    if text in _OPENERS or text in _CLOSERS:
        return "bracket"
    return "operand" if _NAME_OR_NUMBER.match(text) else "operator"


def _tokens(code: str) -> list[_Token]:
    tokens, depth = [], 0
    for match in _TOKEN.finditer(code):
        text = match.group(0)
        if text in _CLOSERS:
            depth = max(depth - 1, 0)
        token_text = text
        before = code[max(match.start() - 40, 0) : match.start()].rstrip()
        if _NAME_OR_NUMBER.match(text) and (before[-1:] in ".?!" if before else match.start() <= 40):
            token_text = text[0].lower() + text[1:]  # a sentence's capital: "Iter_archive()" is iter_archive()
        tokens.append(_Token(token_text, match.start(), match.end(), depth, _kind(text)))
        if text in _OPENERS:
            depth += 1
    return tokens


def _prose_asides(tokens: list[_Token]) -> set[int]:
    """Brackets around words after a word, "(Python 3)", "(in python)": the sentence's, not code."""
    prose: set[int] = set()
    for i, token in enumerate(tokens):
        if token.text != "(" or (i > 0 and (tokens[i - 1].end == token.start or tokens[i - 1].kind != "operand")):
            continue
        j = i + 1
        while j < len(tokens) and tokens[j].kind in ("operand", "punctuation"):
            j += 1
        if j < len(tokens) and tokens[j].text == ")" and j > i + 1:
            prose.update(range(i, j + 1))
    return prose


def _segments(code: str) -> frozenset[str]:
    """The stretches of code in a text, as token sequences: symbols, strings, what sits inside brackets
    or is written against a symbol, and the operands on either side of an operator ("x = y")."""
    tokens = _tokens(code)
    aside = _prose_asides(tokens)
    keep = [False] * len(tokens)
    for i, token in enumerate(tokens):
        if i in aside:
            continue
        kind = token.kind
        if kind in _SYMBOLIC:
            keep[i] = True
        elif token.depth > 0:
            keep[i] = True
        elif kind == "operand":
            neighbours = [j for j in (i - 1, i + 1) if 0 <= j < len(tokens) and j not in aside]
            attached = any(
                tokens[j].kind in _SYMBOLIC and (tokens[j].end == token.start or tokens[j].start == token.end)
                for j in neighbours
            )
            beside = any(  # and in the same sentence: "converted. - `schema`" is a list, not a subtraction
                tokens[j].kind == "operator"
                and _SENTENCE_BREAK.search(code[min(tokens[j].end, token.end) : max(tokens[j].start, token.start)])
                is None
                for j in neighbours
            )
            keep[i] = attached or (beside and token.text.lower() not in _PROSE_WORDS)
    segments, run = set(), []
    for token, kept in zip(tokens, keep, strict=True):
        if kept:
            run.append(token.text)
        elif run:
            segments.add(" ".join(run))
            run = []
    if run:
        segments.add(" ".join(run))
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
