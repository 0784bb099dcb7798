"""The calibrated verifier: hard rules for what must agree, then a small logistic model.

Words in a script the signals cannot read (Cyrillic, Chinese...) and emoji or other symbols must be
the same where both texts hold some: nothing here would see what differs. Numbers, dates,
IDs and versions must agree, and so must negation and, when either text holds
code, the operators and symbols: a pair that differs there is refused outright (the reason says
which); so is one where a prompt leaves out what the other names ("without root"/"as root") or adds
a qualifying phrase to it ("... adjusted for inflation"), or whose few differing words are a swapped
name, antonym, scope word or unit, or whose words swapped sides of a directional word ("Fahrenheit
to Celsius"/"Celsius to Fahrenheit"); and one with, among up to 8 differing words, an antonym
paraphrases do not trade ("hot"/"cold"; not "with no"/"without") or another audience, season, time or
frequency ("for beginners"/"for experienced developers"). The same words respelled ("freez"/"freeze")
are served.
Every other signal goes into a logistic regression over the features of `features.py` and, when
the caller passes both prompts' vectors, |u - v| of them too (where in the embedding space the
two meanings differ). Both are trained by `eval/train.py` on a split of the development data and
shipped as `model.json` (coefficients, standardization, word weights and each model's default
operating point). `min_probability` is the one setting that trades hits for safety: higher serves
fewer paraphrases and fewer wrong answers. It weighs what the rules leave to the model; the same text,
and the same words misspelled, are served at any setting.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from services.cache_worker.verifier.base import HitVerifier, PromptVectors, Verdict
from services.cache_worker.verifier.features import FEATURE_NAMES, FEATURE_REASONS, PairFeatures, pair_features

MODEL_FILE = Path(__file__).with_name("model.json")
HARD_RULES = (
    "unread_text",
    "number_mismatch",
    "negation_mismatch",
    "exclusion_mismatch",
    "symbol_mismatch",
    "added_phrase",
)
# When the texts differ in at most this many content words, a name, antonym, unit or number that
# differs is the whole difference: "the same question about something else".
SMALL_DIFFERENCE = 3
SWAP_RULES = (
    "polarity_mismatch",
    "scope_swap",
    "entity_mismatch",
    "unit_mismatch",
    "number_one_side",
    "order_swap",
)
# Longer prompts hit exactly only. The embedder reads about the first 1,000 characters, so two long
# documents that open alike score near 1.0 whatever follows; checking what follows costs the event
# loop tens of milliseconds per candidate at a few thousand characters of code, seconds at 64,000.
MAX_VERIFIED_CHARS = 2000
# An antonym swap of words paraphrases do not trade stands out among more rewording.
WIDE_DIFFERENCE = 8
# The reason a rule's refusal is counted under, where it is not the rule's own name.
REASONS = {
    "number_one_side": "number_mismatch",
    "scope_swap": "scope_mismatch",
    "strong_polarity": "polarity_mismatch",
}


def hard_refusal(features: PairFeatures) -> str | None:
    """The reason a pair is refused whatever the model says, or None."""
    for rule in HARD_RULES:
        if getattr(features, rule):
            return REASONS.get(rule, rule)
    differing = features.only_query + features.only_candidate
    if differing <= SMALL_DIFFERENCE:
        for rule in SWAP_RULES:
            if getattr(features, rule):
                return REASONS.get(rule, rule)
    if differing <= WIDE_DIFFERENCE:
        if features.strong_polarity and not features.reversal_one_side:
            return REASONS["strong_polarity"]
        if features.wide_scope_swap:
            return REASONS["scope_swap"]
    return None


@dataclass(frozen=True)
class EmbeddingModel:
    """Logistic regression on the standardized features followed by |u - v| of the two prompt vectors."""

    weights: np.ndarray
    intercept: float
    mean: np.ndarray
    scale: np.ndarray
    embedding_dim: int
    default_min_probability: float

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EmbeddingModel:
        return cls(
            weights=np.asarray(data["weights"], dtype=np.float64),
            intercept=float(data["intercept"]),
            mean=np.asarray(data["mean"], dtype=np.float64),
            scale=np.asarray(data["scale"], dtype=np.float64),
            embedding_dim=int(data["embedding_dim"]),
            default_min_probability=float(data["default_min_probability"]),
        )

    def probability(self, features: PairFeatures, vectors: PromptVectors) -> float | None:
        """None when the vectors are not of this model's embedding (another dimension)."""
        query, candidate = (np.asarray(v, dtype=np.float64) for v in vectors)
        if query.shape != (self.embedding_dim,) or candidate.shape != (self.embedding_dim,):
            return None
        x = np.concatenate([features.vector(), np.abs(query - candidate)])
        z = self.intercept + float(((x - self.mean) / self.scale) @ self.weights)
        return 1.0 / (1.0 + math.exp(-max(min(z, 40.0), -40.0)))


@dataclass(frozen=True)
class CalibratedModel:
    """Logistic regression on standardized features, as written by eval/train.py."""

    weights: tuple[float, ...]
    intercept: float
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    default_min_probability: float
    idf: dict[str, float]
    reference: tuple[float, ...]  # standardized features of a typical right hit, to attribute refusals
    with_embeddings: EmbeddingModel | None = None  # used when the caller passes both prompt vectors

    @classmethod
    def load(cls, path: Path | str = MODEL_FILE) -> CalibratedModel:
        data = json.loads(Path(path).read_text())
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CalibratedModel:
        if tuple(data["features"]) != FEATURE_NAMES:
            raise ValueError(f"model features {data['features']} do not match this code's {FEATURE_NAMES}")
        return cls(
            weights=tuple(data["weights"]),
            intercept=float(data["intercept"]),
            mean=tuple(data["mean"]),
            scale=tuple(data["scale"]),
            default_min_probability=float(data["default_min_probability"]),
            idf=dict(data.get("idf", {})),
            reference=tuple(data.get("reference", [0.0] * len(FEATURE_NAMES))),
            with_embeddings=EmbeddingModel.from_dict(data["with_embeddings"]) if "with_embeddings" in data else None,
        )

    def standardized(self, features: PairFeatures) -> list[float]:
        return [(x - m) / s for x, m, s in zip(features.vector(), self.mean, self.scale, strict=True)]

    def probability(self, features: PairFeatures) -> float:
        """The explainable model's probability that one answer serves both texts (before the hard rules)."""
        z = self.intercept + sum(w * x for w, x in zip(self.weights, self.standardized(features), strict=True))
        return 1.0 / (1.0 + math.exp(-max(min(z, 40.0), -40.0)))

    def scored(self, features: PairFeatures, vectors: PromptVectors | None) -> tuple[float, float]:
        """(probability, the default min_probability of the model that gave it): with the vectors when it can."""
        if vectors is not None and self.with_embeddings is not None:
            probability = self.with_embeddings.probability(features, vectors)
            if probability is not None:
                return probability, self.with_embeddings.default_min_probability
        return self.probability(features), self.default_min_probability

    def features(self, query: str, candidate: str, similarity: float) -> PairFeatures:
        return pair_features(query, candidate, similarity, self.idf)

    def verdict(
        self, features: PairFeatures, min_probability: float | None = None, vectors: PromptVectors | None = None
    ) -> Verdict:
        """Refuse on a hard rule, else on a probability below `min_probability` (naming the main cause).

        `min_probability` None: the default operating point of the model that scored the pair.
        """
        probability, default = self.scored(features, vectors)
        min_probability = default if min_probability is None else min_probability
        refusal = hard_refusal(features)
        if refusal is not None:
            return Verdict(False, probability, refusal)
        if features.respelled:  # the same question typed again, misspelled: as sure as the same text
            return Verdict(True, 1.0)
        if probability >= min_probability:
            return Verdict(True, probability)
        return Verdict(False, probability, self._main_cause(features))

    def _main_cause(self, features: PairFeatures) -> str:
        """The reason of the feature that pulled the probability down the most from a typical right hit."""
        pulls = [
            (w * (x - r), name)
            for w, x, r, name in zip(
                self.weights, self.standardized(features), self.reference, FEATURE_NAMES, strict=True
            )
        ]
        pull, name = min(pulls)
        return FEATURE_REASONS.get(name, "differing_words") if pull < 0 else "low_confidence"


class CalibratedVerifier(HitVerifier):
    """Hard rules plus the logistic model, at an operating point (`VERIFIER_MIN_PROBABILITY`).

    Without a setting, each model (with or without the prompt vectors) runs at its own trained default.
    """

    def __init__(self, model: CalibratedModel, min_probability: float | None = None) -> None:
        self.model = model
        self.min_probability = min_probability

    async def verify(
        self, query: str, candidate: str, similarity: float, vectors: PromptVectors | None = None
    ) -> Verdict:
        if query == candidate:
            return Verdict(True, 1.0)
        if max(len(query), len(candidate)) > MAX_VERIFIED_CHARS:
            return Verdict(False, 0.0, "prompt_too_long")
        features = self.model.features(query, candidate, similarity)
        return self.model.verdict(features, self.min_probability, vectors)
