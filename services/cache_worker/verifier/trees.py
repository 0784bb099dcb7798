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
        node = 0
        while self.feature[node] >= 0:
            node = self.left[node] if row[self.feature[node]] <= self.threshold[node] else self.right[node]
        return self.value[node]


class BoostedTrees:
    """P(one answer serves both) from a row of pair features."""

    def __init__(self, baseline: float, trees: list[Tree], feature_names: Sequence[str]) -> None:
        self.baseline = baseline
        self.trees = trees
        self.feature_names = tuple(feature_names)

    @classmethod
    def load(cls, path: Path | str) -> BoostedTrees:
        data = json.loads(Path(path).read_text())
        if data.get("format") != FORMAT:
            raise ValueError(f"{path}: not a {FORMAT} file")
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BoostedTrees:
        trees = [Tree(t["feature"], t["threshold"], t["left"], t["right"], t["value"]) for t in data["trees"]]
        return cls(float(data["baseline"]), trees, data["features"])

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "features": list(self.feature_names),
            "baseline": self.baseline,
            "trees": [vars(tree) for tree in self.trees],
        }

    def probability(self, row: Sequence[float]) -> float:
        if len(row) != len(self.feature_names):
            raise ValueError(f"expected {len(self.feature_names)} features, got {len(row)}")
        logit = self.baseline + sum(tree.leaf_value(row) for tree in self.trees)
        return 1.0 / (1.0 + math.exp(-max(min(logit, 40.0), -40.0)))
