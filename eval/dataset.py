"""The development pair files, and the fixed train/held-out split every script here uses.

A pair's side of the split depends only on its text and the seed (a hash), so it is the same on
every machine and whatever the order of the file; the trap pairs are split within each category
so both sides hold as many of each. Training and tuning see only `train`; reports are on `held_out`.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The development data lives beside the project (../shared/eval), never inside it.
DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "eval"
SEED = "llmcache-verifier-2025"
TRAIN_SHARE = 0.5
PAIR_FILES = ("traps_dev.jsonl", "paraphrase_pairs.jsonl", "qqp_pairs_dev.jsonl")
CONVERSATION_FILES = ("conversations_dev.jsonl",)
LOOK_ALIKE = "look-alike"  # traps categories other than paraphrase and near_repeat


@dataclass(frozen=True)
class Pair:
    """One row: store `a`, ask `b`; a hit is right when `same_answer`. Conversations have message lists."""

    file: str
    id: str
    category: str
    a: Any
    b: Any
    same_answer: bool
    trap: bool = False  # the row names its category (a look-alike kind or a genuine one), as traps_dev's do


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join((SEED, *parts)).encode()).hexdigest()


def load(path: Path) -> list[Pair]:
    name = path.name.removesuffix(".jsonl")
    pairs = []
    with path.open() as f:
        for i, line in enumerate(f):
            if not line.strip():
                continue
            row = json.loads(line)
            category = row.get("category") or row.get("kind") or ("duplicate" if row["same_answer"] else "distinct")
            same, trap = bool(row["same_answer"]), "category" in row
            pairs.append(Pair(name, str(row.get("id", i)), category, row["a"], row["b"], same, trap))
    return pairs


def split(pairs: list[Pair]) -> tuple[list[Pair], list[Pair]]:
    """(train, held_out): within each category, the first TRAIN_SHARE of the pairs ordered by hash."""
    by_category: dict[str, list[Pair]] = defaultdict(list)
    for pair in pairs:
        by_category[pair.category].append(pair)
    train, held_out = [], []
    for members in by_category.values():
        members.sort(key=lambda p: _digest(json.dumps(p.a), json.dumps(p.b)))
        cut = round(len(members) * TRAIN_SHARE)
        train += members[:cut]
        held_out += members[cut:]
    return train, held_out


def sample(pairs: list[Pair], n: int | None) -> list[Pair]:
    """A fixed random sample (all when n is None or not smaller)."""
    if n is None or n >= len(pairs):
        return pairs
    return random.Random(SEED).sample(pairs, n)


def is_look_alike(pair: Pair) -> bool:
    """A trap row that should not hit: one number, name, negation, scope or antonym changed."""
    return pair.trap and not pair.same_answer


def is_genuine(pair: Pair) -> bool:
    """A trap row that should hit: a paraphrase or a near-repeat."""
    return pair.trap and pair.same_answer
