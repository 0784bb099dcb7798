"""Fit the verifier's decision: gradient-boosted trees over the classifier's score and pair_features.

The pair classifier (eval/train.py) reads meaning, but hesitates over a question typed again with a
typo and over a rewording; how the two prompts differ on the surface (pair_features.py) and their
cosine tell those apart from a look-alike better than its score alone. The decision is fitted on
pairs the classifier never trained on, run through the same screen as in the cache worker (equal
text served, an exact check or a too-long prompt refused, the similarity pre-filter), so it learns
only about the pairs it will see:

- the classifier's dev pairs: whole clusters held out of its training (rewordings, look-alikes,
  noise, code-made one-fact changes, the nearest question of another cluster, Quora pairs);
- the question sets in eval/data/reported/: blind sets of earlier rounds, reported on and now
  development data (weighted up: they are the closest to what users write);
- half of the held-out Quora pairs of ../shared/eval, when it is beside the project
  (`dataset.shared_quora`): real questions, mostly two different ones on one topic, a kind
  of pair the blind sets don't have; without them the decision serves far rewordings too readily.

scikit-learn's HistGradientBoostingClassifier (seeded; monotone in the classifier's score: a higher
score never lowers the decision's), exported as plain arrays to the model folder's decision.json
(trees.py reads it; no scikit-learn or pickle in the cache worker). The export is checked against
scikit-learn's own probabilities. The operating point is chosen afterwards by eval/choose.py.

    PYTHONPATH=. .venv/bin/python -m eval.fit_decision
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from eval import training_data
from eval.dataset import load, project_sets, shared_quora
from services.cache_worker.verifier.base import PromptPair
from services.cache_worker.verifier.cross_encoder import (
    DECISION_FILE,
    MODEL_DIR,
    CrossEncoderVerifier,
    PairClassifier,
)
from services.cache_worker.verifier.pair_features import FEATURE_NAMES, features
from services.cache_worker.verifier.text import normalized
from services.cache_worker.verifier.trees import BoostedTrees, Tree

REPORTED = Path(__file__).resolve().parent / "data" / "reported"
PREFILTER = 0.5
REPORTED_WEIGHT = 3.0


def log(message: str) -> None:
    """Progress on stdout, at once."""
    print(message, flush=True)


async def embed_all(texts: list[str]) -> tuple[dict[str, np.ndarray], str]:
    """Unit vectors from the embedder's own model (ONNX, as the cache's vector search has them), and its name."""
    from scripts.stack import ROOT
    from services.embedder.providers.onnx import OnnxEmbeddingProvider

    provider = OnnxEmbeddingProvider(threads=2, cache_dir=ROOT / ".data" / "models")
    await provider.start()
    try:
        vectors: dict[str, np.ndarray] = {}
        unique = sorted(set(texts))
        for i in range(0, len(unique), 64):
            batch = unique[i : i + 64]
            embedded = await provider.embed(batch)
            vectors.update(zip(batch, (np.asarray(v, dtype=np.float32) for v in embedded), strict=True))
        return vectors, provider.model
    finally:
        await provider.close()


def measured_texts(paths: list[Path]) -> set[str]:
    """Every question text of the sets a choice or a report is made on, normalized."""
    return {normalized(side) for path in paths for p in load(path) for side in (p.a, p.b) if isinstance(side, str)}


def rows(model_dir: Path, exclude: list[Path]) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, int], str]:
    """(features, labels, weights, counts by source, embedding model) of the pairs that reach the decision.

    A pair with a text of a set measured elsewhere (the choose sets and the sets of eval/data/pairs/,
    and any `exclude` file) is left out: a choice or a report on pairs the decision was fitted on
    would say what it memorised.
    """
    clusters = training_data.load_clusters()
    reported = [p for path in sorted(REPORTED.glob("*questions*.jsonl")) for p in load(path)]
    quora = shared_quora("decision")
    if not quora:
        log("../shared/eval is not beside the project: fitting without its Quora pairs")
    log(f"embedding (clusters {len(clusters)}, reported pairs {len(reported)}, Quora pairs {len(quora)})...")
    cluster_vectors, _ = asyncio.run(embed_all([c["text"] for c in clusters]))
    _, dev = training_data.build(embed=lambda texts: np.stack([cluster_vectors[t] for t in texts]))
    candidates = [(p.a, p.b, p.label, 1.0, "dev") for p in dev]
    candidates += [(p.a, p.b, int(p.same_answer), REPORTED_WEIGHT, "reported") for p in reported]
    candidates += [(p.a, p.b, int(p.same_answer), 1.0, "quora") for p in quora]
    held_out = measured_texts(project_sets() + exclude)
    seen: set[tuple[str, str]] = set()
    unique = []
    for candidate in candidates:
        key = (normalized(candidate[0]), normalized(candidate[1]))
        if key in seen or key[0] in held_out or key[1] in held_out:
            continue
        seen.add(key)
        unique.append(candidate)
    log(f"  {len(candidates) - len(unique)} pairs left out (repeated, or a text of a measured set)")
    vectors, embedding_model = asyncio.run(embed_all([t for a, b, *_ in unique for t in (a, b)]))

    classifier = PairClassifier.load(model_dir)
    screen = CrossEncoderVerifier(classifier, 0.5)
    kept = []
    for stored, asked, label, weight, source in unique:
        similarity = float(vectors[stored] @ vectors[asked])
        if similarity < PREFILTER or screen.screen(PromptPair(asked, stored, similarity)) is not None:
            continue
        kept.append((stored, asked, label, weight, source, similarity))
    log(f"scoring {len(kept)} pairs with the classifier...")
    probabilities: list[float] = []
    for i in range(0, len(kept), 64):
        probabilities += classifier.probabilities([(s, a) for s, a, *_ in kept[i : i + 64]])
    x = np.array([features(s, a, p, sim) for (s, a, _, _, _, sim), p in zip(kept, probabilities, strict=True)])
    y = np.array([k[2] for k in kept])
    w = np.array([k[3] for k in kept])
    counts = Counter(f"{source}:{'same' if label else 'different'}" for _, _, label, _, source, _ in kept)
    return x, y, w, dict(counts), embedding_model


def export(model: Any, embedding_model: str | None = None) -> BoostedTrees:
    """scikit-learn's fitted trees as trees.py's arrays."""
    trees = []
    for (predictor,) in model._predictors:
        nodes = predictor.nodes
        trees.append(
            Tree(
                feature=[
                    -1 if leaf else int(f) for f, leaf in zip(nodes["feature_idx"], nodes["is_leaf"], strict=True)
                ],
                threshold=[float(t) for t in nodes["num_threshold"]],
                left=[int(n) for n in nodes["left"]],
                right=[int(n) for n in nodes["right"]],
                value=[float(v) for v in nodes["value"]],
            )
        )
    return BoostedTrees(float(np.ravel(model._baseline_prediction)[0]), trees, FEATURE_NAMES, embedding_model)


def write_note(model_dir: Path, made: dict[str, Any], trees: int) -> None:
    """The model folder's README gets (or has replaced) a section on how the decision was made."""
    path = model_dir / "README.md"
    note = path.read_text().split("\n## The decision")[0].rstrip() if path.is_file() else ""
    pairs = ", ".join(f"{k} {v}" for k, v in sorted(made["pairs"].items()))
    path.write_text(
        f"""{note}

## The decision

`decision.json`: {trees} gradient-boosted trees of depth {made["depth"]} (learning rate {made["learning_rate"]},
seed {made["seed"]}) over the classifier's score and the surface numbers of `pair_features.py`, made by
`python -m eval.fit_decision` (scikit-learn, exported as arrays: `trees.py` reads them). Fitted on pairs
the classifier never trained on that pass the verifier's screen and the {made["prefilter"]} pre-filter:
{pairs} (`dev`: the classifier's held-out clusters; `reported`: {", ".join(made["reported_sets"])},
weight {made["reported_weight"]}; `quora`: the decision half of ../shared/eval's held-out Quora pairs).
"""
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, default=MODEL_DIR)
    parser.add_argument("--trees", type=int, default=300)
    parser.add_argument("--learning-rate", type=float, default=0.05)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--exclude", type=Path, action="append", default=[], help="leave out pairs with a text of this set too"
    )
    args = parser.parse_args()
    from sklearn.ensemble import HistGradientBoostingClassifier

    x, y, w, counts, embedding_model = rows(args.model_dir, args.exclude)
    log(f"fitting on {len(y)} pairs: {counts}")
    monotone = [1 if name == "classifier_logit" else 0 for name in FEATURE_NAMES]
    model = HistGradientBoostingClassifier(
        max_iter=args.trees,
        learning_rate=args.learning_rate,
        max_depth=args.depth,
        monotonic_cst=monotone,
        early_stopping=False,
        random_state=args.seed,
    ).fit(x, y, sample_weight=w)
    decision = export(model, embedding_model)
    ours = np.array([decision.probability(row) for row in x])
    difference = float(np.abs(ours - model.predict_proba(x)[:, 1]).max())
    if difference > 1e-6:
        raise SystemExit(f"the exported trees differ from scikit-learn's by {difference}")
    (args.model_dir / DECISION_FILE).write_text(json.dumps(decision.to_dict()) + "\n")
    meta_path = args.model_dir / "model.json"
    meta = json.loads(meta_path.read_text())
    meta["decision"] = {
        "file": DECISION_FILE,
        "made_by": "python -m eval.fit_decision (scikit-learn HistGradientBoostingClassifier)",
        "trees": args.trees,
        "learning_rate": args.learning_rate,
        "depth": args.depth,
        "seed": args.seed,
        "pairs": counts,
        "reported_sets": sorted(p.name for p in REPORTED.glob("*questions*.jsonl")),
        "reported_weight": REPORTED_WEIGHT,
        "prefilter": PREFILTER,
        "embedding_model": embedding_model,
    }
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    write_note(args.model_dir, meta["decision"], len(decision.trees))
    log(f"wrote {args.model_dir / DECISION_FILE} ({len(decision.trees)} trees; export matches to {difference:.1e})")


if __name__ == "__main__":
    main()
