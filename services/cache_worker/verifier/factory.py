"""Builds the hit verifier the settings ask for (`VERIFIER`)."""

from __future__ import annotations

import openai

from services.cache_worker.verifier.base import HitVerifier, ThresholdVerifier
from services.cache_worker.verifier.cross_encoder import (
    MODEL_DIR,
    CrossEncoderVerifier,
    PairClassifier,
    default_min_probability,
    load_decision,
)
from services.cache_worker.verifier.judged import JudgedVerifier
from services.cache_worker.verifier.llm_judge import LlmJudgeVerifier

KINDS = ("cross_encoder", "cross_encoder+llm_judge", "threshold")


def build_verifier(
    kind: str,
    *,
    min_probability: float | None = None,
    model_dir: str = "",
    threads: int = 1,
    judge_band: tuple[float, float] = (0.2, 0.9),
    judge_base_url: str = "",
    judge_api_key: str = "",
    judge_model: str = "gpt-4o-mini",
    judge_timeout_seconds: float = 2.0,
) -> HitVerifier:
    """`cross_encoder` (default), `cross_encoder+llm_judge` (the judge on the uncertain band) or
    `threshold` (the similarity alone: every candidate over the pre-filter is served)."""
    if kind == "threshold":
        return ThresholdVerifier()
    if kind not in KINDS:
        raise ValueError(f"unknown verifier {kind!r}: choose from {', '.join(KINDS)}")
    directory = model_dir or MODEL_DIR
    classifier = PairClassifier.load(directory)
    classifier.warm_up()
    if min_probability is None:
        min_probability = default_min_probability(directory)
    model = CrossEncoderVerifier(classifier, min_probability, threads=threads, decision=load_decision(directory))
    if kind == "cross_encoder":
        return model
    client = openai.AsyncOpenAI(base_url=judge_base_url or None, api_key=judge_api_key or "unused", max_retries=0)
    return JudgedVerifier(model, LlmJudgeVerifier(client, judge_model, judge_timeout_seconds), judge_band)
