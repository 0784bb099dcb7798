"""One spelling of a prompt: what two prompts that are the same text typed differently have in common.

Case, whitespace, quotes and the punctuation that ends a sentence or a clause change nothing a model
would answer; a symbol inside a word does ("C++", "3.5", "x != y"), and stays.
"""

from __future__ import annotations

import re
import unicodedata

# Curly, low and angle quotes and the backtick, as the straight ones.
_QUOTES = str.maketrans(
    {"\u2018": "'", "\u2019": "'", "\u201b": "'", "`": "'", "\u201c": '"', "\u201d": '"', "\u201e": '"',
     "\u00ab": '"', "\u00bb": '"'}
)  # fmt: skip
# Sentence and clause punctuation: before a space or at the end (a dot in "3.5" or "node.js" stays).
_TRAILING_PUNCTUATION = re.compile(r"[?!.,;:…]+(?=\s|$)")
_QUOTE_CHARS = re.compile(r"[\"']")
_SPACE = re.compile(r"\s+")


def normalized(text: str) -> str:
    """Case-folded, NFKC, without quotes or sentence punctuation, single-spaced."""
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES).casefold()
    text = _TRAILING_PUNCTUATION.sub(" ", text)
    text = _QUOTE_CHARS.sub("", text)
    return _SPACE.sub(" ", text).strip()
