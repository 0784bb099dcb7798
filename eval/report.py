"""Tables, intervals, the sweep across the verifier's setting, and the chart of `make eval`.

Rates come with a 95% Wilson interval: with 135 look-alikes in a category, 0 served still allows
up to 2.8%, and the interval says so.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from eval.dataset import Pair

SHOULD_HIT_KINDS = ("near_repeat", "paraphrase")
PROBABILITY_SWEEP = tuple(round(x, 2) for x in np.arange(0.02, 1.0, 0.02))


@dataclass
class Outcome:
    """What happened to one pair: whether b was served a's answer, and what the sweep needs."""

    pair: Pair
    served: bool
    similarity: float | None = None  # of the best candidate, hit or miss
    seconds: float = 0.0  # the decision: vector search + verifier (local), or the request of b (http)
    verifier_seconds: float = 0.0
    refusals: list[str] = field(default_factory=list)
    # For the sweep: served whatever the setting (same text), or the lowest model probability among the
    # pairs that decided (the prompt, and under the aligned match the replaced and inserted turns), if no rule refused.
    certain: bool = False
    probability: float | None = None

    def served_at(self, min_probability: float, prefilter: float = 0.0) -> bool:
        """Whether b would have been served at this setting (and a pre-filter at least the run's)."""
        if self.similarity is None or self.similarity < prefilter:
            return False
        return self.certain or (self.probability is not None and self.probability >= min_probability)


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% interval of a proportion k/n."""
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def rate(k: int, n: int) -> dict[str, Any]:
    low, high = wilson(k, n)
    return {"k": k, "n": n, "rate": k / n if n else None, "low": low, "high": high}


def fmt(r: dict[str, Any]) -> str:
    if not r["n"]:
        return "-"
    return f"{100 * r['rate']:5.1f}% ({r['k']}/{r['n']}, {100 * r['low']:.1f}-{100 * r['high']:.1f})"


def is_conversation(pair: Pair) -> bool:
    return isinstance(pair.a, list)


def table(outcomes: list[Outcome]) -> list[dict[str, Any]]:
    """Rows: each kind of set (questions, conversations), its should-hit and should-not totals, each category."""
    rows = []
    for label, members in (
        ("questions", [o for o in outcomes if not is_conversation(o.pair)]),
        ("conversations", [o for o in outcomes if is_conversation(o.pair)]),
    ):
        if not members:
            continue
        should = [o for o in members if o.pair.same_answer]
        should_not = [o for o in members if not o.pair.same_answer]
        rows.append({"group": f"{label}: should hit (served)", **rate(sum(o.served for o in should), len(should))})
        rows.append(
            {"group": f"{label}: should not hit (wrong)", **rate(sum(o.served for o in should_not), len(should_not))}
        )
        by_category: dict[tuple[bool, str], list[Outcome]] = defaultdict(list)
        for o in members:
            by_category[(o.pair.same_answer, o.pair.category)].append(o)
        for (same, category), group in sorted(by_category.items(), key=lambda item: (not item[0][0], item[0][1])):
            served = sum(o.served for o in group)
            rows.append({"group": f"  {category} ({'served' if same else 'wrong'})", **rate(served, len(group))})
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    print(f"\n{'set / category':46} rate (k/n, 95% interval)")
    for row in rows:
        print(f"{row['group']:46} {fmt(row)}")


def latency(outcomes: list[Outcome]) -> dict[str, float]:
    decision = [o.seconds * 1000 for o in outcomes if o.seconds]
    verifier = [o.verifier_seconds * 1000 for o in outcomes if o.verifier_seconds]

    def q(values: list[float], p: float) -> float:
        return float(np.percentile(values, p)) if values else 0.0

    return {
        "decision_ms_p50": q(decision, 50),
        "decision_ms_p99": q(decision, 99),
        "verifier_ms_p50": q(verifier, 50),
        "verifier_ms_p99": q(verifier, 99),
    }


def sweep(outcomes: list[Outcome], prefilter: float = 0.0) -> list[dict[str, float]]:
    """Across min_probability: the shares served of each should-hit kind, and the wrong ones (at a
    pre-filter at least the one the outcomes were found with)."""
    questions = [o for o in outcomes if not is_conversation(o.pair)]
    conversations = [o for o in outcomes if is_conversation(o.pair)]
    look_alikes = [o for o in questions if not o.pair.same_answer]
    categories = sorted({o.pair.category for o in look_alikes})
    points = []
    for t in PROBABILITY_SWEEP:

        def share(group: list[Outcome], t: float = t) -> float:
            return sum(o.served_at(t, prefilter) for o in group) / len(group) if group else 0.0

        point = {
            "prefilter": prefilter,
            "min_probability": t,
            "served": share([o for o in questions if o.pair.same_answer]),
            "wrong": share(look_alikes),
            "worst_category_wrong": max(
                (share([o for o in look_alikes if o.pair.category == c]) for c in categories), default=0.0
            ),
        }
        for kind in SHOULD_HIT_KINDS:
            point[kind] = share([o for o in questions if o.pair.category == kind])
        if conversations:
            point["conversations_served"] = share([o for o in conversations if o.pair.same_answer])
            point["conversations_wrong"] = share([o for o in conversations if not o.pair.same_answer])
        points.append(point)
    return points


def print_sweep(points: list[dict[str, float]], every: int = 5) -> None:
    print(
        "  min_probability: questions served (near repeats, paraphrases) / look-alikes served (worst category)"
        + (" / conversations served, wrong" if points and "conversations_served" in points[0] else "")
    )
    for point in points[::every]:
        line = (
            f"  {point['min_probability']:.2f}: {100 * point['served']:5.1f}% ({100 * point['near_repeat']:5.1f}%,"
            f" {100 * point['paraphrase']:5.1f}%) / {100 * point['wrong']:4.1f}%"
            f" ({100 * point['worst_category_wrong']:4.1f}%)"
        )
        if "conversations_served" in point:
            line += f" / {100 * point['conversations_served']:5.1f}%, {100 * point['conversations_wrong']:4.1f}%"
        print(line)


def cosine_only(outcomes: list[Outcome]) -> list[dict[str, float]]:
    """The cache before the verifier: a plain cosine threshold."""
    questions = [o for o in outcomes if not is_conversation(o.pair)]
    genuine = [o for o in questions if o.pair.same_answer]
    look_alikes = [o for o in questions if not o.pair.same_answer]
    return [
        {
            "threshold": round(float(t), 2),
            "served": sum((o.similarity or 0) >= t for o in genuine) / max(len(genuine), 1),
            "wrong": sum((o.similarity or 0) >= t for o in look_alikes) / max(len(look_alikes), 1),
        }
        for t in np.arange(0.70, 1.0001, 0.01)
    ]


def chart(
    points: list[dict[str, float]], baseline: list[dict[str, float]], chosen: float, path: Path, title: str
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5))
    ax.plot([100 * p["wrong"] for p in baseline], [100 * p["served"] for p in baseline], "o-", ms=3, color="grey",
            label="cosine threshold only (0.70-1.00)")  # fmt: skip
    ax.plot([100 * p["wrong"] for p in points], [100 * p["served"] for p in points], "o-", ms=3,
            label="hit verifier, across min_probability")  # fmt: skip
    at = min(points, key=lambda p: abs(p["min_probability"] - chosen))
    ax.plot([100 * at["wrong"]], [100 * at["served"]], "r*", ms=14, label=f"default min_probability {chosen}")
    ax.axvline(2, color="red", lw=0.8, ls="--", label="target: at most 2% wrong")
    ax.set_xlabel("look-alikes served (wrong answers), %")
    ax.set_ylabel("near-repeats and paraphrases served, %")
    ax.set_title(title)
    ax.set_xlim(-1, 40)
    ax.set_ylim(0, 101)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
