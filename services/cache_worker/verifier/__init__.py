"""Hit verifiers: the check after the vector search that a semantic candidate's answer is right."""

from services.cache_worker.verifier.base import HitVerifier, PromptPair, ThresholdVerifier, Verdict
from services.cache_worker.verifier.factory import build_verifier

__all__ = ["HitVerifier", "PromptPair", "ThresholdVerifier", "Verdict", "build_verifier"]
