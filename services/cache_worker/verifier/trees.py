"""The verifier's decision: a small gradient-boosted tree ensemble over pair_features, read from JSON.

Fitted by eval/fit_decision.py (scikit-learn's HistGradientBoostingClassifier, on pairs the pair
classifier never trained on) and exported as plain arrays, so the cache worker needs no scikit-learn
and no pickle: each tree is a list of nodes, a node sends a row left when its feature is at most the
threshold, and the leaves' values summed with the baseline are a logit.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORMAT = "boosted-trees-v1"


@dataclass(frozen=True)
class Tree:
    """Parallel arrays, one entry a node; node 0 is the root; a leaf has feature -1."""

    feature: list[int]
    threshold: list[float]
    left: list[int]
    right: list[int]
    value: list[float]

    def leaf_value(self, row: Sequence[float]) -> float:
        """The value of the leaf the row reaches."""
        node = 0
        while self.feature[node] >= 0:
            node = self.left[node] if row[self.feature[node]] <= self.threshold[node] else self.right[node]
        return self.value[node]


class BoostedTrees:
    """P(one answer serves both) from a row of pair features.

    `embedding_model` is the model whose cosines the trees were fitted on: another model's cosines
    have another range, so the decision applies only to pairs measured with it.
    """

    def __init__(
        self, baseline: float, trees: list[Tree], feature_names: Sequence[str], embedding_model: str | None = None
    ) -> None:
        self.baseline = baseline
        self.trees = trees
        self.feature_names = tuple(feature_names)
        self.embedding_model = embedding_model
        for tree in trees:
            _check(tree, len(self.feature_names))

    @classmethod
    def load(cls, path: Path | str) -> BoostedTrees:
        """Read a decision.json (ValueError when it is not one)."""
        data = json.loads(Path(path).read_text())
        if data.get("format") != FORMAT:
            raise ValueError(f"{path}: not a {FORMAT} file")
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BoostedTrees:
        """The trees of a parsed decision.json."""
        trees = [Tree(t["feature"], t["threshold"], t["left"], t["right"], t["value"]) for t in data["trees"]]
        return cls(float(data["baseline"]), trees, data["features"], data.get("embedding_model"))

    def to_dict(self) -> dict[str, Any]:
        """What decision.json holds."""
        return {
            "format": FORMAT,
            "features": list(self.feature_names),
            "embedding_model": self.embedding_model,
            "baseline": self.baseline,
            "trees": [vars(tree) for tree in self.trees],
        }

    def probability(self, row: Sequence[float]) -> float:
        """The logit of the leaves the row reaches, summed with the baseline, as a probability."""
        if len(row) != len(self.feature_names):
            raise ValueError(f"expected {len(self.feature_names)} features, got {len(row)}")
        if not all(math.isfinite(value) for value in row):
            raise ValueError("a feature is not a finite number")
        logit = self.baseline + sum(tree.leaf_value(row) for tree in self.trees)
        return 1.0 / (1.0 + math.exp(-max(min(logit, 40.0), -40.0)))


def _check(tree: Tree, width: int) -> None:
    """A tree whose every walk ends at a leaf, on features the rows have (else a broken file)."""
    nodes = len(tree.feature)
    if not nodes or any(len(a) != nodes for a in (tree.threshold, tree.left, tree.right, tree.value)):
        raise ValueError("a tree's arrays differ in length")
    for node, feature in enumerate(tree.feature):
        if feature >= width:
            raise ValueError(f"a tree splits on feature {feature} of {width}")
        if feature >= 0 and not (node < tree.left[node] < nodes and node < tree.right[node] < nodes):
            raise ValueError("a tree's node points outside it or back")
