"""Storing a generated answer: Redis under its exact key, and a pgvector row for semantic search."""

from __future__ import annotations

import logging
import uuid

from services.cache_worker.entries import CachedAnswer
from services.cache_worker.exact_store import ExactStore
from services.cache_worker.lookup import Embed
from services.cache_worker.metrics import DEGRADED, STORES
from services.cache_worker.semantic_store import NewEntry, SemanticStore
from shared.contracts import CompletionGenerated

log = logging.getLogger(__name__)


class Storer:
    """Writes CompletionGenerated events into both stores."""

    def __init__(self, exact: ExactStore, semantic: SemanticStore, embed: Embed, default_ttl_seconds: int) -> None:
        self._exact = exact
        self._semantic = semantic
        self._embed = embed
        self._default_ttl = default_ttl_seconds

    async def store(self, event: CompletionGenerated) -> None:
        """Store one answer. A Redis failure is logged and counted; a Postgres failure raises (so it is retried)."""
        ttl = event.ttl_seconds or self._default_ttl
        answer = CachedAnswer(
            entry_id=str(uuid.UUID(hex=event.event_id)) if _is_uuid_hex(event.event_id) else str(uuid.uuid4()),
            exact_key=event.exact_key,
            model=event.model,
            completion=event.completion,
            created_at=event.created_at,
            upstream=event.upstream,
        )
        try:
            await self._exact.put(answer, ttl)
            STORES.labels("redis", "ok").inc()
        except Exception as exc:
            log.warning("storing in Redis failed: %s", exc)
            STORES.labels("redis", "error").inc()
            DEGRADED.labels("redis", "store").inc()

        if not event.partition_key or not event.prompt_text:
            return  # not eligible for semantic matching (exact-only request)
        embedding, embedding_model = event.embedding, event.embedding_model
        if embedding is None or embedding_model is None:
            embedding, embedding_model = await self._embed(event.prompt_text)
        try:
            await self._semantic.put(
                NewEntry(
                    answer=answer,
                    tenant=event.tenant,
                    namespace=event.namespace,
                    partition_key=event.partition_key,
                    embedding_model=embedding_model,
                    prompt_text=event.prompt_text,
                    embedding=embedding,
                    ttl_seconds=ttl,
                )
            )
        except Exception:
            STORES.labels("postgres", "error").inc()
            raise
        STORES.labels("postgres", "ok").inc()


def _is_uuid_hex(value: str) -> bool:
    try:
        uuid.UUID(hex=value)
    except ValueError:
        return False
    return True
