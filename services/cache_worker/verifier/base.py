"""The hit verifier interface: the last word on a semantic candidate the vector search found.

The vector search ranks stored prompts by cosine similarity, which cannot tell "convert 5 miles to
km" from "convert 50 miles to km". A verifier looks at both texts and the similarity and accepts the
candidate or refuses it with a reason (counted in `llmcache_cache_refused_candidates_total`).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass

# The unit vectors of the two prompts, when the caller has them: (query's, candidate's).
PromptVectors = tuple[Sequence[float], Sequence[float]]


@dataclass(frozen=True)
class Verdict:
    """Accept or refuse; `score` is the verifier's confidence that one answer serves both texts."""

    accept: bool
    score: float
    reason: str | None = None  # why it refused (a metric label: short, fixed vocabulary)


class HitVerifier(abc.ABC):
    """Decides whether the answer stored for `candidate` may answer `query`."""

    @abc.abstractmethod
    async def verify(
        self, query: str, candidate: str, similarity: float, vectors: PromptVectors | None = None
    ) -> Verdict:
        """The verdict on one candidate; must not raise (a failure is a refusal).

        `vectors` (the query's and the candidate's prompt vectors) lets a verifier look past the
        cosine at where the two meanings differ; verifiers work without them.
        """

    async def close(self) -> None:  # noqa: B027 - most verifiers hold nothing
        """Release clients (an HTTP client for the LLM judge)."""


class ThresholdVerifier(HitVerifier):
    """Accepts every candidate the similarity pre-filter let through: the cache before the verifier."""

    async def verify(
        self, query: str, candidate: str, similarity: float, vectors: PromptVectors | None = None
    ) -> Verdict:
        return Verdict(True, similarity)


class ChainVerifier(HitVerifier):
    """Runs verifiers in order; the first refusal wins (cheap checks first, the LLM judge last)."""

    def __init__(self, verifiers: list[HitVerifier]) -> None:
        self._verifiers = verifiers

    async def verify(
        self, query: str, candidate: str, similarity: float, vectors: PromptVectors | None = None
    ) -> Verdict:
        verdict = Verdict(True, similarity)
        for verifier in self._verifiers:
            verdict = await verifier.verify(query, candidate, similarity, vectors)
            if not verdict.accept:
                return verdict
        return verdict

    async def close(self) -> None:
        for verifier in self._verifiers:
            await verifier.close()
