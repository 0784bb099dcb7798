"""The operating point: the most served under every limit, the Quora different-question guard included."""

from __future__ import annotations

from eval.choose import choose


def point(t: float, served: float, wrong: float, worst: float, quora: float | None = None) -> dict[str, float]:
    p = {"prefilter": 0.5, "min_probability": t, "served": served, "wrong": wrong, "worst_category_wrong": worst}
    if quora is not None:
        p["quora_distinct_served"] = quora
    return p


def test_the_most_served_setting_within_the_limits_is_chosen() -> None:
    points = [point(0.5, 0.9, 0.03, 0.05), point(0.6, 0.8, 0.01, 0.02), point(0.7, 0.7, 0.005, 0.01)]
    assert choose(points, 0.012, 0.025)["min_probability"] == 0.6


def test_a_setting_that_serves_too_many_different_questions_is_not_chosen() -> None:
    points = [point(0.6, 0.8, 0.01, 0.02, quora=0.08), point(0.7, 0.7, 0.005, 0.01, quora=0.04)]
    assert choose(points, 0.012, 0.025, max_quora=0.05)["min_probability"] == 0.7


def test_no_setting_within_the_limits_is_no_choice() -> None:
    assert choose([point(0.5, 0.9, 0.03, 0.05)], 0.012, 0.025) is None
