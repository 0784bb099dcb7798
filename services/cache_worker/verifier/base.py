"""The hit verifier interface: the last word on a semantic candidate the vector search found.

The vector search ranks stored prompts by cosine similarity, which cannot tell "convert 5 miles to
km" from "convert 50 miles to km". A verifier reads both texts (and the similarity) of each pair and
accepts it or refuses it with a reason (counted in `llmcache_cache_refused_candidates_total`).
Pairs come in batches: the candidates of one lookup, and under the reworded conversation match the
user's earlier turns beside them, are judged in one call (one model run).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class PromptPair:
    """A stored prompt (`candidate`) and the prompt asking for its answer (`query`)."""

    query: str
    candidate: str
    similarity: float | None = None  # cosine of the two, when the vector search measured it
    embedding_model: str | None = None  # the model of the vectors that cosine is of


@dataclass(frozen=True)
class Verdict:
    """Accept or refuse; `score` is the verifier's confidence that one answer serves both texts."""

    accept: bool
    score: float
    reason: str | None = None  # why it refused (a metric label: short, fixed vocabulary)
    certain: bool = False  # decided by a rule (same text, an exact check), not by a score


class HitVerifier(abc.ABC):
    """Decides whether the answer stored for each pair's `candidate` may answer its `query`."""

    @abc.abstractmethod
    async def verify(self, pairs: Sequence[PromptPair]) -> list[Verdict]:
        """One verdict per pair, in order; must not raise (a failure is a refusal)."""

    def screen(self, pair: PromptPair) -> Verdict | None:
        """The verdict when it needs no model (same text, an exact check), else None: a candidate one of
        whose pairs is refused so needs none of its other pairs verified."""
        return None

    async def verify_screened(self, pairs: Sequence[PromptPair]) -> list[Verdict]:
        """`verify` for pairs `screen` has let through already (not screened again: a hit's path)."""
        return await self.verify(pairs)

    async def close(self) -> None:  # noqa: B027 - most verifiers hold nothing
        """Release clients and threads."""


class ThresholdVerifier(HitVerifier):
    """Accepts every candidate the similarity pre-filter let through: the cache before the verifier. A pair
    without a similarity (a conversation's turns) it cannot judge, and refuses."""

    async def verify(self, pairs: Sequence[PromptPair]) -> list[Verdict]:
        return [
            Verdict(True, pair.similarity) if pair.similarity is not None else Verdict(False, 0.0, "no_similarity")
            for pair in pairs
        ]
