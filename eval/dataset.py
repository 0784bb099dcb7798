"""Pair files, and the fixed train/held-out split of ../shared/eval.

A pair file has one JSON object a line: `{"a": ..., "b": ..., "same_answer": bool, "category": ...}`
(store `a`, ask `b`); `a` and `b` are prompts, or lists of OpenAI messages for conversations, whose
rows name a `kind` instead of a category. The project's own sets are in eval/data/pairs/ (blind sets
written for it, added once they had been reported on: development data since). ../shared/eval, when
it is beside the project, is split by a hash of each pair's text so both halves are the same on every
machine; training sees only `train`.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROJECT_PAIRS = Path(__file__).resolve().parent / "data" / "pairs"
# Development data beside the project (../shared/eval), when there is such a folder.
DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "eval"
SEED = "llmcache-verifier-2025"
TRAIN_SHARE = 0.5
SHARED_FILES = ("traps_dev.jsonl", "paraphrase_pairs.jsonl", "qqp_pairs_dev.jsonl", "conversations_dev.jsonl")


@dataclass(frozen=True)
class Pair:
    """One row: store `a`, ask `b`; a hit is right when `same_answer`. Conversations have message lists."""

    file: str
    id: str
    category: str
    a: Any
    b: Any
    same_answer: bool


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
            same = bool(row["same_answer"])
            category = row.get("category") or row.get("kind") or ("duplicate" if same else "distinct")
            pairs.append(Pair(name, str(row.get("id", i)), category, row["a"], row["b"], same))
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


def project_sets() -> list[Path]:
    return sorted(PROJECT_PAIRS.glob("*.jsonl"))


def _quora_part(pair: Pair) -> str:
    """Which use a held-out Quora pair has, by hash: `decision` (half), `choose` or `report` (a quarter each)."""
    share = int(_digest("decision", json.dumps(pair.a), json.dumps(pair.b))[:8], 16) / 0xFFFFFFFF
    return "decision" if share < 0.5 else "choose" if share < 0.75 else "report"


def shared_quora(part: str) -> list[Pair]:
    """One part of the held-out Quora pairs: real users' questions, most pairs two different questions
    on one topic, which the blind sets lack. The verifier's decision is fitted on `decision`
    (eval/fit_decision.py), its operating point checked on `choose` (eval/choose.py), reports use
    `report`; the pair classifier never trained on any of them."""
    path = DATA_DIR / "qqp_pairs_dev.jsonl"
    return [p for p in split(load(path))[1] if _quora_part(p) == part] if path.is_file() else []


def shared_held_out(qqp_sample: int | None = 2000) -> list[Pair]:
    """The held-out half of ../shared/eval, its Quora pairs only those kept for reports (the
    conversations file whole: nothing trains on it)."""
    pairs: list[Pair] = []
    for name in SHARED_FILES:
        path = DATA_DIR / name
        if not path.is_file():
            continue
        rows = load(path)
        held_out = rows if name.startswith("conversations") else split(rows)[1]
        if name.startswith("qqp"):
            pairs += sample([p for p in held_out if _quora_part(p) == "report"], qqp_sample)
        else:
            pairs += held_out
    return pairs
