"""Leave out of training every cluster that is nearly a pair of an evaluation set.

A training message that is nearly a question of a set the verifier is measured on would let the
model learn that very pair. The sets written to measure the verifier (the project's eval/data/pairs/
and any blind set given) are embedded with the cache's model; a cluster with any text within
cosine MAX_SIMILARITY of any of their user messages is listed in eval/data/train/excluded.json,
which eval/training_data.py reads. Rerun it when clusters or sets are added.

    PYTHONPATH=. .venv/bin/python -m eval.decontaminate [--pairs blind_set.jsonl ...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from eval.dataset import load, project_sets
from eval.training_data import EXCLUDED, load_clusters

MAX_SIMILARITY = 0.93


def user_texts(side: object) -> list[str]:
    if isinstance(side, str):
        return [side]
    if isinstance(side, list):
        return [
            m["content"]
            for m in side
            if isinstance(m, dict) and m.get("role") == "user" and isinstance(m.get("content"), str)
        ]
    return []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=Path, action="append", default=[], help="another evaluation set")
    args = parser.parse_args()
    from sentence_transformers import SentenceTransformer

    from services.embedder.providers.local import PACKAGED_MODEL, model_directory

    paths = project_sets() + args.pairs
    measured = sorted(
        {t for path in paths for pair in load(path) for side in (pair.a, pair.b) for t in user_texts(side)}
    )
    clusters = load_clusters(include_excluded=True)
    texts = [(c["id"], t) for c in clusters for t in [c["text"], *c["same"], *(d["text"] for d in c["different"])]]
    model = SentenceTransformer(str(model_directory(PACKAGED_MODEL)), device="cpu")
    measured_vectors = model.encode(measured, batch_size=64, normalize_embeddings=True)
    train_vectors = model.encode([t for _, t in texts], batch_size=64, normalize_embeddings=True)
    closest = np.zeros(len(texts))
    for i in range(0, len(texts), 2048):
        closest[i : i + 2048] = (train_vectors[i : i + 2048] @ measured_vectors.T).max(axis=1)
    excluded = sorted({texts[i][0] for i in np.where(closest >= MAX_SIMILARITY)[0]})
    EXCLUDED.write_text(
        json.dumps({"max_similarity": MAX_SIMILARITY, "sets": [p.name for p in paths], "clusters": excluded}, indent=1)
        + "\n"
    )
    print(
        f"{len(excluded)} of {len(clusters)} clusters left out"
        f" (a text within cosine {MAX_SIMILARITY} of {len(measured)} measured texts)"
    )


if __name__ == "__main__":
    main()
