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
Stretches may come in another order ("== and ===" / "=== and =="), and one text may quote a part
of a stretch the other holds whole (`*args`, then `def f(*args, **kwargs)`); the stretches no other
holds must be the same. Case counts, but for a sentence's capital ("Iter_archive() yields...").
What a text writes in backticks is code word for word (`x = a if b else c`, `result = a and b`): it
must be written, token for token, in the other text, in backticks or not.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})
_EMPHASIS = re.compile(r"(?<![\w*])(\*{1,2})(?=[^\s*])([^*\n]*?[^\s*])\1(?![\w*])")
_NAMES_WITH_SYMBOLS = re.compile(r"(?i)(?<![\w+#])(?:c\+\+|notepad\+\+|[cfj]#)(?![\w+#])")
_INSIDE_WORD = re.compile(r"(?<=[A-Za-z0-9])['-](?=[A-Za-z0-9])")
# A dash between sentence parts: "Python - how do I sort", "`<a><b>` - why?", "`x*x` -- what does it give".
_PROSE_DASH = re.compile(
    r"(?<=[A-Za-z]{2})\s+--?\s+(?=[A-Za-z]{2})"
    r"|\s--?\s+(?=(?i:what|why|how|which|when|where|who|difference|is|are|does|do|can|should|any)\b)"
)
# An aside in brackets after a space: "(in Python)", "(python 3.11)", "(JavaScript)".
_PROSE_ASIDE = re.compile(r"(?:(?<=\s)|^)\(([A-Za-z][A-Za-z0-9.]*(?: [A-Za-z0-9.]+)*)\)")
# A markdown list's "- " or "* " before a word or code (not a diff's "- x" / "+ y" lines).
_BULLET = re.compile(r"(?m)^(\s*)[-*][ \t]+(?=`|[A-Za-z]{2})")
_DIFF_LINE = re.compile(r"(?m)^\s*\+ ")
_POSSESSIVE = re.compile(r"(?<=[A-Za-z]s)'(?=\s)")  # "pandas' groupby", not the end of 'thanks'
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
    # A call ("book(s)" and "box(es)" are plurals); no restart after each dot ("a.a.a.a..." is linear).
    r"|(?:(?<![\w.])[A-Za-z_][\w.]*|(?<=\.)[A-Za-z_]\w*)\((?!(?:s|es|ies)\))"
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


def _possessives_blanked(text: str) -> str:
    """ "pandas' groupby" without its apostrophe; a quote that closes a string ('thanks' + x) stays."""

    def blank(match: re.Match[str]) -> str:
        line_start = text.rfind("\n", 0, match.start()) + 1
        return match.group(0) if text.count("'", line_start, match.start()) % 2 else " "

    return _POSSESSIVE.sub(blank, text)


def _code_text(text: str) -> str:
    """The text with what is never a symbol blanked out (punctuation stays: the symbol regex skips it)."""
    text = text.translate(_QUOTES)
    text = _EMPHASIS.sub(r"\2", text).replace("`", " ")
    text = _NAMES_WITH_SYMBOLS.sub(" ", text)
    if _DIFF_LINE.search(text) is None:
        text = _BULLET.sub(r"\1 ", text)
    text = _PROSE_DASH.sub(" ", _INSIDE_WORD.sub(" ", _possessives_blanked(text)))
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
    code: str = field(default="", compare=False)  # the text as code is read from it (prose marks blanked)
    quoted: tuple[str, ...] = field(default=(), compare=False)  # what the text writes in `backticks`
    text: str = field(default="", compare=False)  # the text itself (curly quotes straightened)

    # Read only when a pair is compared (most are prose), once per text: the facts of a stored prompt
    # are kept (features.facts), and these with them.
    @functools.cached_property
    def segments(self) -> frozenset[tuple[str, ...]]:
        """Each stretch of code, as its tokens."""
        return _segments(self.code)

    @functools.cached_property
    def quoted_tokens(self) -> tuple[tuple[str, ...], ...]:
        """Each span in backticks as all its tokens, words included: there everything is code
        (`x = a if b else c`, `result = a and b`, `price - discount`)."""
        return tuple(tuple(t.text for t in _tokens(span, sentences=False)) for span in self.quoted)

    @functools.cached_property
    def all_tokens(self) -> tuple[tuple[str, ...], ...]:
        """The whole text as tokens, read as code and as written (a quote the prose rules took for a
        sentence's may be a string: `x = 'a' if c else 'b'`)."""
        return tuple(t.text for t in _tokens(self.code)), tuple(t.text for t in _tokens(self.text, sentences=False))


_BACKTICKS = re.compile(r"```[\w+-]*\n?(.*?)```|`([^`\n]+)`", re.S)
_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])")
# Code read as tokens, so spacing never matters: string literals whole, names (with dots: `os.path`),
# numbers, operators (longest first), brackets, and commas and colons (code only inside brackets).
_TOKEN = re.compile(
    r"""'[^'\n]*'|"[^"\n]*"|[^\W\d][\w.]*\w|[^\W\d]|\d+(?:\.\d+)?|"""
    + "|".join(re.escape(op) for op in _OPERATORS)
    + "|["
    + re.escape(_SINGLE)
    + ",:]"
)
_NAME_OR_NUMBER = re.compile(r"\w")
_OPERAND = re.compile(r"\d+(?:\.\d+)?|[A-Za-z]|[A-Za-z_]\w*(?:[_\d.]|[a-z][A-Z])[\w.]*")  # x, 42, n_rows, df.x
# Words beside an operator that are the sentence's, not the code's ("a += operator", "between == and ===").
_PROSE_WORDS = frozenset(
    "a an the and or not in on of to for from with by as at vs versus than between is are was were be do does did"
    " what how why when which who this that these those it its i you we my your use using mean means".split()
)
_SYMBOLIC = ("operator", "bracket", "string")
_SENTENCE_BREAK = re.compile(r"[.?!;\n]")
_SENTENCE_END = re.compile(r"[.?!]\s")


class _SentenceStart(str):
    """A name starting a sentence, which capitalizes it: equal to the name with either case of its first
    letter. Elsewhere case counts (`x = True` is not `x = true`)."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and other[:1].lower() + other[1:] == self[:1].lower() + self[1:]

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return hash(self[:1].lower() + self[1:])


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


def _tokens(code: str, sentences: bool = True) -> list[_Token]:
    tokens, depth = [], 0
    for match in _TOKEN.finditer(code):
        text = match.group(0)
        if text in _CLOSERS:
            depth = max(depth - 1, 0)
        token_text = text
        before = code[max(match.start() - 40, 0) : match.start()].rstrip()
        if sentences and _NAME_OR_NUMBER.match(text) and (before[-1:] in ".?!" if before else match.start() <= 40):
            token_text = _SentenceStart(text)  # "Iter_archive() yields ..." is iter_archive()
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


def _gap(code: str, left: _Token, right: _Token) -> str:
    return code[left.end : right.start]


def _touching(code: str, a: _Token, b: _Token) -> bool:
    """Written against each other: nothing but untokenized marks between them, no space, no sentence end."""
    gap = _gap(code, a, b) if a.start < b.start else _gap(code, b, a)
    return not any(c.isspace() for c in gap) and _SENTENCE_BREAK.search(gap) is None


def _code_looking(token: _Token) -> bool:
    """A number, a string, a bracket, a one-letter name or a name only code writes (snake_case, a.b, x2)."""
    return token.kind in ("string", "bracket") or _OPERAND.fullmatch(token.text) is not None


def _binary_operand(code: str, tokens: list[_Token], i: int, aside: set[int]) -> bool:
    """Whether tokens[i], standing apart, is an operand of an operator beside it (`x = y`, `x=y`): spaced
    alike on both sides, in one sentence, with an operand, string or bracket on the other side; a word
    of the sentence ("a >> operator", "between == and ===") is not, unless it is a one-letter name
    facing code ("a = 127")."""
    token = tokens[i]
    for op, other in ((i - 1, i - 2), (i + 1, i + 2)):
        if not (0 <= op < len(tokens) and 0 <= other < len(tokens)) or op in aside or other in aside:
            continue
        if tokens[op].kind != "operator" or tokens[other].kind == "operator":
            continue
        first, middle, last = sorted((i, op, other))
        gaps = (_gap(code, tokens[first], tokens[middle]), _gap(code, tokens[middle], tokens[last]))
        if any(_SENTENCE_BREAK.search(gap) for gap in gaps) or (gaps[0].isspace() != gaps[1].isspace()):
            continue  # "prints $HOME", "curl -O": a prefix, not a binary operator
        word = token.text.lower()
        if word not in _PROSE_WORDS or (len(word) == 1 and _code_looking(tokens[other])):
            return True
    return False


def _segments(code: str) -> frozenset[tuple[str, ...]]:
    """The stretches of code in a text, as token sequences: symbols, strings, what sits inside brackets
    or is written against a symbol, and the operands on either side of an operator ("x = y")."""
    tokens = _tokens(code)
    aside = _prose_asides(tokens)
    keep = [False] * len(tokens)
    for i, token in enumerate(tokens):
        if i in aside:
            continue
        if token.kind in _SYMBOLIC or token.depth > 0:
            keep[i] = True
        elif token.kind == "operand":
            attached = any(
                0 <= j < len(tokens)
                and j not in aside
                and tokens[j].kind in _SYMBOLIC
                and _touching(code, token, tokens[j])
                for j in (i - 1, i + 1)
            )
            keep[i] = attached or _binary_operand(code, tokens, i, aside)
    segments: set[tuple[str, ...]] = set()
    run: list[str] = []
    for i, (token, kept) in enumerate(zip(tokens, keep, strict=True)):
        # A run ends at a token it leaves out and at a sentence's end; statements stay in order (`x = y; y = x`).
        if run and (not kept or _SENTENCE_END.search(_gap(code, tokens[i - 1], token))):
            segments.add(tuple(run))
            run = []
        if kept:
            run.append(token.text)
    if run:
        segments.add(tuple(run))
    return frozenset(segments)


def code_symbols(text: str) -> CodeSymbols:
    if _MAYBE_SYMBOL.search(text) is None:  # most prompts: nothing but words and punctuation
        return CodeSymbols(False, frozenset(), text=text)  # (the other may quote some of its words as code)
    code = _code_text(text)
    quoted = tuple(m.group(1) or m.group(2) for m in _BACKTICKS.finditer(text.translate(_QUOTES)))
    return CodeSymbols(
        _CODE_EVIDENCE.search(code) is not None,
        frozenset(_SYMBOL.findall(code)),
        tuple(_NUMBER.findall(code)),
        code,
        quoted,
        text.translate(_QUOTES),
    )


def symbol_mismatch(a: CodeSymbols, b: CodeSymbols) -> bool:
    """What one text writes in backticks the other does not write; or one of the texts holds code and
    their symbols differ, or the same numbers stand in another order (other numbers are the number
    rule's to refuse), or a stretch of code differs."""
    if not _quoted_found(a, b) or not _quoted_found(b, a):
        return True
    if not (a.code_like or b.code_like):
        return False
    if a.symbols != b.symbols or (a.numbers != b.numbers and sorted(a.numbers) == sorted(b.numbers)):
        return True
    mine, theirs = a.segments, b.segments
    if mine == theirs:
        return False
    (mine_whole, mine_parts), (their_whole, their_parts) = _outermost(mine), _outermost(theirs)
    if not _same(mine_whole, their_whole):
        return True
    # A part quoted apart (`*args`, then all of `def f(*args, **kwargs)`) may be on one side only; when
    # both quote parts, they must be the same parts (`a[i]` after `a[i] = a[j]` is not `a[j]` after it).
    return bool(mine_parts) and bool(their_parts) and not _same(mine_parts, their_parts)


def _quoted_found(a: CodeSymbols, b: CodeSymbols) -> bool:
    """Each of a's spans in backticks is written, token for token and words included, in b: as (part
    of) one of b's spans, or in b's text when b quotes it without backticks."""
    if not a.quoted:
        return True
    their_spans, their_text = b.quoted_tokens, None
    for span in a.quoted_tokens:
        if not span or any(_contains(theirs, span) for theirs in their_spans):
            continue
        their_text = b.all_tokens if their_text is None else their_text
        if not any(_contains(tokens, span) for tokens in their_text):
            return False
    return True


def _outermost(
    stretches: frozenset[tuple[str, ...]],
) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]]]:
    """(the stretches no other one holds, the ones another holds)."""
    whole: list[tuple[str, ...]] = []
    parts: list[tuple[str, ...]] = []
    # As strings with a separator no token holds, so holding is a substring test (C speed, not Python's).
    written = {stretch: "\x1f" + "\x1f".join(stretch) + "\x1f" for stretch in stretches}
    for stretch, text in written.items():
        inside = any(other is not stretch and text in other_text for other, other_text in written.items())
        (parts if inside else whole).append(stretch)
    return whole, parts


def _same(mine: list[tuple[str, ...]], theirs: list[tuple[str, ...]]) -> bool:
    return all(any(m == t for t in theirs) for m in mine) and all(any(t == m for m in mine) for t in theirs)


def _contains(outer: tuple[str, ...], inner: tuple[str, ...]) -> bool:
    n = len(inner)
    return any(outer[k : k + n] == inner for k in range(len(outer) - n + 1))
