"""Questions for load: distinct real ones for misses, and a template fallback."""

from __future__ import annotations

import json
import random

from scripts.stack import ROOT

EVAL_DIR = ROOT.parent / "shared" / "eval"

WORDS = (
    "apple bridge carbon dragon engine forest guitar harbor island jungle kettle lemon marble needle orbit "
    "pepper quartz river saddle tunnel umbrella violin walnut yacht zebra anchor biscuit canyon dolphin "
    "eclipse falcon glacier hammer igloo jacket kayak lantern meadow nectar oyster puzzle quiver rocket "
    "salmon tractor unicorn volcano whistle xylophone yogurt zeppelin"
).split()


def fresh_question() -> str:
    """A generated question: a fallback only, since template questions look alike to the embedding model."""
    return "How does a " + " ".join(random.sample(WORDS, 4)) + f" relate to a {random.choice(WORDS)}?"


def distinct_questions() -> list[str]:
    """One side of each Quora pair in ../shared/eval (real, varied questions), shuffled; [] without it.

    Generated questions from a template ("How does a ... relate to a ...?") look alike to the
    embedding model: about one in six was served as a semantic hit, which is no miss to time.
    """
    path = EVAL_DIR / "qqp_pairs_dev.jsonl"
    if not path.exists():
        return []
    questions = sorted({json.loads(line)["a"].strip() for line in path.read_text().splitlines() if line.strip()})
    random.shuffle(questions)
    return questions
