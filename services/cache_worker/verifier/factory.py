"""Builds the hit verifier the settings ask for (`VERIFIER`: a comma-separated chain, run in order)."""

from __future__ import annotations

import openai

from services.cache_worker.verifier.base import ChainVerifier, HitVerifier, ThresholdVerifier
from services.cache_worker.verifier.calibrated import MODEL_FILE, CalibratedModel, CalibratedVerifier
from services.cache_worker.verifier.llm_judge import LlmJudgeVerifier

KINDS = ("calibrated", "threshold", "llm_judge")


def build_verifier(
    kinds: str,
    *,
    min_probability: float | None = None,
    model_file: str = "",
    judge_base_url: str = "",
    judge_api_key: str = "",
    judge_model: str = "gpt-4o-mini",
    judge_timeout_seconds: float = 2.0,
) -> HitVerifier:
    """`calibrated` (default), `threshold` (the similarity alone), `calibrated,llm_judge` (both, judge last)."""
    chain: list[HitVerifier] = []
    for kind in (k.strip() for k in kinds.split(",") if k.strip()):
        if kind == "calibrated":
            chain.append(CalibratedVerifier(CalibratedModel.load(model_file or MODEL_FILE), min_probability))
        elif kind == "threshold":
            chain.append(ThresholdVerifier())
        elif kind == "llm_judge":
            client = openai.AsyncOpenAI(
                base_url=judge_base_url or None, api_key=judge_api_key or "unused", max_retries=0
            )
            chain.append(LlmJudgeVerifier(client, judge_model, judge_timeout_seconds))
        else:
            raise ValueError(f"unknown verifier {kind!r}: choose from {', '.join(KINDS)}")
    if not chain:
        return ThresholdVerifier()
    return chain[0] if len(chain) == 1 else ChainVerifier(chain)
