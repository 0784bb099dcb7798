"""What each hard rule of the verifier refuses on the train half: the cost of a rule before it ships.

A hard rule refuses whatever the model says, so a rule that fires on genuine pairs (paraphrases,
near-repeats, Quora duplicates) costs hits that no setting gives back. For every rule of
`calibrated.hard_refusal` this counts, on the train half only (choose rules here, report on the
held-out half with `make eval`), the pairs it refuses and those it alone refuses (no other rule
would), split into genuine pairs and look-alikes. The rules read the texts only (the similarity
plays no part), so this needs no embeddings and runs in seconds.

    PYTHONPATH=. .venv/bin/python -m eval.hard_rules                      # the table
    PYTHONPATH=. .venv/bin/python -m eval.hard_rules --show symbol_mismatch  # its genuine pairs
    PYTHONPATH=. .venv/bin/python -m eval.hard_rules --pairs my_pairs.jsonl  # a pair file of your own, whole
"""

from __future__ import annotations

import argparse
import dataclasses
from collections import Counter
from pathlib import Path

from eval.dataset import DATA_DIR, PAIR_FILES, Pair, is_look_alike, load, split
from services.cache_worker.verifier.calibrated import HARD_RULES, SWAP_RULES, hard_refusal
from services.cache_worker.verifier.features import PairFeatures, pair_features

RULES = HARD_RULES + SWAP_RULES + ("strong_polarity", "wide_scope_swap")
GROUPS = ("paraphrase_pairs", "traps genuine", "qqp duplicates", "traps look-alikes", "qqp non-duplicates")


def group(pair: Pair) -> str:
    if pair.trap:
        return "traps look-alikes" if is_look_alike(pair) else "traps genuine"
    if pair.file == "qqp_pairs_dev":
        return "qqp duplicates" if pair.same_answer else "qqp non-duplicates"
    return pair.file


def with_only(features: PairFeatures, rule: str) -> PairFeatures:
    """The pair as the rules would see it had every other rule's flag been clear."""
    return dataclasses.replace(features, **{r: r == rule and getattr(features, r) for r in RULES})


def without(features: PairFeatures, rule: str) -> PairFeatures:
    return dataclasses.replace(features, **{rule: False})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--show", choices=RULES, help="print the genuine pairs this rule alone refuses")
    parser.add_argument("--pairs", type=Path, action="append", help="a pair file to read whole, not the train half")
    args = parser.parse_args()

    train: list[Pair] = []
    for path in args.pairs or [DATA_DIR / name for name in PAIR_FILES]:
        rows = load(path)
        train += rows if args.pairs else split(rows)[0]
    sizes = Counter(group(p) for p in train)
    refused: Counter[tuple[str, str]] = Counter()
    alone: Counter[tuple[str, str]] = Counter()
    for pair in train:
        features = pair_features(pair.b, pair.a, similarity=1.0)
        for rule in RULES:
            if hard_refusal(with_only(features, rule)) is None:
                continue
            refused[rule, group(pair)] += 1
            if hard_refusal(without(features, rule)) is None:
                alone[rule, group(pair)] += 1
                if rule == args.show and pair.same_answer:
                    print(f"[{group(pair)}] differing {features.differing}\n  a: {pair.a!r}\n  b: {pair.b!r}")

    which = "the given pairs" if args.pairs else "train half"
    print(f"{which}: pairs each hard rule refuses (of them, refused by that rule alone)\n")
    print(f"{'rule':20}" + "".join(f"{g:>22}" for g in GROUPS))
    print(f"{'(pairs)':20}" + "".join(f"{sizes[g]:>22}" for g in GROUPS))
    for rule in RULES:
        cells = "".join(f"{f'{refused[rule, g]} ({alone[rule, g]})':>22}" for g in GROUPS)
        print(f"{rule:20}{cells}")


if __name__ == "__main__":
    main()
