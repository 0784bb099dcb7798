"""The lookup decision: exact hit, semantic hit, or a miss carrying what the store will need.

Knows nothing of the broker. Dependencies fail open: a Redis, Postgres or embedder failure turns
into a miss (counted), never into an error for the user.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from services.cache_worker import keys
from services.cache_worker.entries import CachedAnswer
from services.cache_worker.exact_store import ExactStore
from services.cache_worker.metrics import BEST_SIMILARITY, DEGRADED, LOOKUPS, STAGE_SECONDS
from services.cache_worker.semantic_store import SemanticStore
from shared.contracts import CompletionRequest, LookupContext

log = logging.getLogger(__name__)

Embed = Callable[[str], Awaitable[tuple[list[float], str]]]


@dataclass(frozen=True)
class Hit:
    answer: CachedAnswer
    match: Literal["exact", "semantic"]
    similarity: float | None = None
    embedding_dim: int | None = None  # semantic hits: which table the entry lives in


@dataclass(frozen=True)
class Miss:
    lookup: LookupContext


class Lookup:
    """Runs one request through the exact cache, then the semantic cache."""

    def __init__(self, exact: ExactStore, semantic: SemanticStore, embed: Embed, default_threshold: float) -> None:
        self._exact = exact
        self._semantic = semantic
        self._embed = embed
        self._default_threshold = default_threshold

    async def run(self, request: CompletionRequest) -> Hit | Miss:
        started = time.perf_counter()
        outcome = await self._decide(request)
        STAGE_SECONDS.labels("total").observe(time.perf_counter() - started)
        if isinstance(outcome, Hit):
            LOOKUPS.labels(f"hit_{outcome.match}", "").inc()
        else:
            result = "bypass" if outcome.lookup.status == "BYPASS" else "miss"
            LOOKUPS.labels(result, outcome.lookup.bypass_reason or "").inc()
        return outcome

    async def _decide(self, request: CompletionRequest) -> Hit | Miss:
        controls = request.controls
        if controls.mode == "off":
            return Miss(LookupContext(status="BYPASS", bypass_reason="cache_mode_off"))
        key = keys.exact_key(request.tenant, controls.namespace, request.body)

        started = time.perf_counter()
        try:
            answer = await self._exact.get(key)
        except Exception as exc:
            log.warning("exact lookup failed, going on without Redis: %s", exc)
            DEGRADED.labels("redis", "lookup").inc()
            answer = None
        STAGE_SECONDS.labels("exact").observe(time.perf_counter() - started)
        if answer is not None and _fresh(answer, controls.max_age_seconds):
            return Hit(answer, "exact")

        miss = LookupContext(status="MISS", exact_key=key)
        prompt = keys.semantic_prompt(request.body) if controls.mode == "semantic" else None
        if prompt is None:
            return Miss(miss)

        started = time.perf_counter()
        try:
            vector, embedding_model = await self._embed(prompt)
        except Exception as exc:
            log.warning("embedding failed, semantic lookup skipped: %s", exc)
            DEGRADED.labels("embedder", "lookup").inc()
            return Miss(miss)
        STAGE_SECONDS.labels("embedding").observe(time.perf_counter() - started)

        partition = keys.partition_key(request.tenant, controls.namespace, request.body, embedding_model)
        miss = miss.model_copy(
            update={
                "partition_key": partition,
                "prompt_text": prompt,
                "embedding": vector,
                "embedding_model": embedding_model,
            }
        )
        started = time.perf_counter()
        try:
            candidate = await self._semantic.nearest(partition, vector, controls.max_age_seconds)
        except Exception as exc:
            log.warning("vector search failed, going on without Postgres: %s", exc)
            DEGRADED.labels("postgres", "lookup").inc()
            return Miss(miss)
        STAGE_SECONDS.labels("vector_search").observe(time.perf_counter() - started)
        if candidate is None:
            return Miss(miss)

        threshold = (
            controls.similarity_threshold if controls.similarity_threshold is not None else self._default_threshold
        )
        if candidate.similarity >= threshold:
            BEST_SIMILARITY.labels("hit").observe(candidate.similarity)
            return Hit(candidate.answer, "semantic", candidate.similarity, len(vector))
        BEST_SIMILARITY.labels("miss").observe(candidate.similarity)
        return Miss(miss.model_copy(update={"best_similarity": candidate.similarity}))


def _fresh(answer: CachedAnswer, max_age_seconds: int | None) -> bool:
    return max_age_seconds is None or answer.age_seconds() <= max_age_seconds
