"""The verifier's decision trees: what eval/fit_decision.py exports from scikit-learn is what the cache
worker computes, without scikit-learn."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from eval.fit_decision import export
from services.cache_worker.verifier.cross_encoder import MODEL_DIR, load_decision
from services.cache_worker.verifier.pair_features import FEATURE_NAMES
from services.cache_worker.verifier.trees import BoostedTrees


@pytest.fixture(scope="module")
def fitted() -> tuple[Any, np.ndarray]:
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.default_rng(3)
    x = rng.normal(size=(600, len(FEATURE_NAMES)))
    y = (x[:, 0] + 0.5 * x[:, 1] * x[:, 2] + rng.normal(scale=0.3, size=600) > 0).astype(int)
    model = HistGradientBoostingClassifier(max_iter=40, max_depth=3, random_state=0).fit(x, y)
    return model, x


def test_the_exported_trees_give_scikit_learns_probabilities(fitted: tuple[Any, np.ndarray]) -> None:
    model, x = fitted
    trees = export(model)
    ours = np.array([trees.probability(row) for row in x])
    assert np.abs(ours - model.predict_proba(x)[:, 1]).max() < 1e-9


def test_the_json_file_round_trips(fitted: tuple[Any, np.ndarray], tmp_path: Path) -> None:
    model, x = fitted
    path = tmp_path / "decision.json"
    path.write_text(json.dumps(export(model, "all-MiniLM-L6-v2").to_dict()))
    again = BoostedTrees.load(path)
    assert again.embedding_model == "all-MiniLM-L6-v2"
    assert [again.probability(row) for row in x[:20]] == [export(model).probability(row) for row in x[:20]]


def test_a_row_of_the_wrong_width_or_a_file_of_another_format_is_refused(
    fitted: tuple[Any, np.ndarray], tmp_path: Path
) -> None:
    model, x = fitted
    with pytest.raises(ValueError, match="features"):
        export(model).probability([0.0, 1.0])
    with pytest.raises(ValueError, match="finite"):
        export(model).probability([float("nan"), *list(x[0][1:])])
    path = tmp_path / "other.json"
    path.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ValueError, match="not a boosted-trees-v1"):
        BoostedTrees.load(path)


def test_the_shipped_decision_reads_the_features_the_cache_worker_computes() -> None:
    decision = load_decision(MODEL_DIR)
    assert decision is not None and decision.feature_names == FEATURE_NAMES
    meta = json.loads((MODEL_DIR / "model.json").read_text())
    assert meta["decision"]["file"] == "decision.json"


def test_a_broken_tree_or_a_decision_of_other_features_is_refused_when_loaded(
    fitted: tuple[Any, np.ndarray], tmp_path: Path
) -> None:
    model, _ = fitted
    data = export(model).to_dict()
    data["trees"][0]["left"][0] = 0  # a node pointing back at itself: a walk that never ends
    with pytest.raises(ValueError, match="outside it or back"):
        BoostedTrees.from_dict(data)
    data = export(model).to_dict()
    data["features"] = list(reversed(data["features"]))
    (tmp_path / "decision.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"pair_features\.py computes"):
        load_decision(tmp_path)
