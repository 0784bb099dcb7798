"""What the pair classifier reads: both prompts, with the words where they differ marked.

A look-alike is most often a question with one thing changed: "convert a list to a tuple" and
"convert a tuple to a list" share every word. The classifier sees both prompts whole, and also,
between two marker tokens, the runs of words the other prompt does not have in the same order
(a word-level alignment, as `diff` makes): what changed stands out, whether it is a swapped order,
an antonym, a name, or a qualifier added. In a rewording most words are marked, and the model
reads the meaning. Training (eval/train.py) and the cache worker encode pairs with the same code.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

import numpy as np

# Two of BERT's unused vocabulary entries, made unsplittable special tokens.
OPEN, CLOSE = "[unused0]", "[unused1]"
_TOKEN = re.compile(r"\w+(?:['\u2019.]\w+)*|[^\w\s]")


def marked(a: str, b: str) -> tuple[str, str]:
    """Both texts, each run of words missing from the other's alignment put between OPEN and CLOSE."""
    tokens_a, tokens_b = list(_TOKEN.finditer(a)), list(_TOKEN.finditer(b))
    kept_a, kept_b = aligned([t.group().casefold() for t in tokens_a], [t.group().casefold() for t in tokens_b])
    return _mark(a, tokens_a, kept_a), _mark(b, tokens_b, kept_b)


def aligned(words_a: Sequence[str], words_b: Sequence[str]) -> tuple[set[int], set[int]]:
    """The positions of each side's words inside a word-level alignment of the two (as `diff` aligns lines)."""
    kept_a: set[int] = set()
    kept_b: set[int] = set()
    for block in SequenceMatcher(None, words_a, words_b, autojunk=False).get_matching_blocks():
        kept_a.update(range(block.a, block.a + block.size))
        kept_b.update(range(block.b, block.b + block.size))
    return kept_a, kept_b


def _mark(text: str, tokens: list[re.Match[str]], kept: set[int]) -> str:
    runs: list[tuple[int, int]] = []
    i = 0
    while i < len(tokens):
        if i in kept:
            i += 1
            continue
        start = i
        while i < len(tokens) and i not in kept:
            i += 1
        if any(t.group()[0].isalnum() or t.group()[0] == "_" for t in tokens[start:i]):  # not punctuation alone
            runs.append((tokens[start].start(), tokens[i - 1].end()))
    pieces, at = [], 0
    for start, end in runs:
        pieces += [text[at:start], f" {OPEN} ", text[start:end], f" {CLOSE} "]
        at = end
    pieces.append(text[at:])
    return "".join(pieces)


def load_tokenizer(path: Path | str) -> Any:
    """The model's fast tokenizer, with the markers as whole tokens and no padding or truncation of its own."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.add_special_tokens([OPEN, CLOSE])
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def encode(
    tokenizer: Any, pairs: Sequence[tuple[str, str]], max_length: int, mark: bool = True
) -> dict[str, np.ndarray]:
    """input_ids, attention_mask and token_type_ids of (stored, asked) pairs, marked, padded to the longest."""
    encodings = tokenizer.encode_batch([marked(a, b) if mark else (a, b) for a, b in pairs])
    fitted = [_fit(e.ids, e.type_ids, max_length) for e in encodings]
    width = max(len(ids) for ids, _ in fitted)
    pad = tokenizer.token_to_id("[PAD]") or 0
    ids = np.full((len(pairs), width), pad, dtype=np.int64)
    types = np.zeros((len(pairs), width), dtype=np.int64)
    mask = np.zeros((len(pairs), width), dtype=np.int64)
    for row, (tokens, type_ids) in enumerate(fitted):
        ids[row, : len(tokens)] = tokens
        types[row, : len(tokens)] = type_ids
        mask[row, : len(tokens)] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def length(tokenizer: Any, a: str, b: str, mark: bool = True) -> int:
    """Tokens of the (marked) pair, before any cut."""
    return len(tokenizer.encode(*(marked(a, b) if mark else (a, b))).ids)


def _fit(ids: list[int], type_ids: list[int], max_length: int) -> tuple[list[int], list[int]]:
    """Cut the longer prompt first ("longest first"), keeping both [SEP]s."""
    if len(ids) <= max_length:
        return ids, type_ids
    first = type_ids.index(1) if 1 in type_ids else len(ids)
    a, b = ids[1 : first - 1], ids[first:-1]
    while len(a) + len(b) + 3 > max_length:
        if len(a) >= len(b):
            a = a[:-1]
        else:
            b = b[:-1]
    cls, sep = ids[0], ids[first - 1]
    return [cls, *a, sep, *b, sep], [0] * (len(a) + 2) + [1] * (len(b) + 1)
