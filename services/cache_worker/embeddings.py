"""The embeddings cache: each input of an embeddings request cached exactly, on its own, in Redis.

A vector depends on the input, the model and the parameters (`dimensions`, `encoding_format`, ...),
and is cached per tenant and namespace like any answer. A batch whose inputs are all cached is
answered here; otherwise the LLM worker is sent only the other inputs (and where each goes), asks
the upstream for them and answers with their vectors, while the cached vectors go from here to the
gateway, which puts both in order: no vector crosses the broker twice. Vectors live in the exact
store as entries of their own (its TTL, LRU order and per-tenant cap apply; PostgreSQL never
holds them, so they are noted as Redis-only for namespace flushes). Redis failing is a bypass.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from services.cache_worker.entries import CachedAnswer
from services.cache_worker.exact_store import ExactStore
from services.cache_worker.keys import answer_affecting, canonical_json
from services.cache_worker.metrics import DEGRADED, LOOKUPS, STORES
from shared.contracts.completions import CachedEmbedding, EmbeddingsLookup, EmbeddingsRequest
from shared.contracts.store_events import EmbeddingsGenerated
from shared.embeddings import embedding_inputs, embeddings_response

log = logging.getLogger(__name__)

EMBEDDING_OBJECT = "embedding"


def embedding_key(tenant: str, namespace: str, body: dict[str, Any], item: Any) -> str:
    """SHA-256 (hex) of one input and everything that shapes its vector (model, dimensions, encoding...)."""
    params = {k: v for k, v in answer_affecting(body).items() if k != "input"}
    params.setdefault("encoding_format", "float")  # the default, spelled out: left out and "float" are one
    material = {"tenant": tenant, "namespace": namespace, "kind": EMBEDDING_OBJECT, "params": params, "input": item}
    return hashlib.sha256(canonical_json(material)).hexdigest()


def stored_answer(key: str, model: str, embedding: Any, tokens: int, created_at: float) -> CachedAnswer:
    """One input's vector as an exact-store entry (its tokens are what a later hit saves)."""
    return CachedAnswer(
        entry_id=str(uuid.uuid4()),
        exact_key=key,
        model=model,
        completion={
            "object": EMBEDDING_OBJECT,
            "embedding": embedding,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        },
        created_at=created_at,
    )


@dataclass(frozen=True)
class EmbeddingsHit:
    """Every input was cached: the response, and what it saved."""

    response: dict[str, Any]
    keys: list[str]
    tokens_saved: int


@dataclass(frozen=True)
class EmbeddingsMiss:
    """Some inputs (or all) are not cached: the request for the LLM worker, with only those, and the cached
    vectors (if any), for the gateway."""

    forward: EmbeddingsRequest
    cached: list[CachedEmbedding]


def for_llm_worker(
    request: EmbeddingsRequest, lookup: EmbeddingsLookup, cached: list[CachedEmbedding]
) -> EmbeddingsRequest:
    """The request as the LLM worker gets it: the inputs the cache did not hold, their keys and places."""
    if not cached:
        return request.model_copy(update={"lookup": lookup})
    held = {item.index for item in cached}
    items = embedding_inputs(request.body)
    missing = [i for i in range(len(items)) if i not in held]
    partial = lookup.model_copy(
        update={
            "keys": [lookup.keys[i] for i in missing],
            "indexes": missing,
            "inputs_cached": len(cached),
            "tokens_saved": sum(item.tokens for item in cached),
        }
    )
    body = {**request.body, "input": [items[i] for i in missing]}
    return request.model_copy(update={"body": body, "lookup": partial})


class EmbeddingsCache:
    """Looks up and stores the vectors of embeddings requests."""

    def __init__(self, exact: ExactStore, default_ttl_seconds: int) -> None:
        self._exact = exact
        self._default_ttl = default_ttl_seconds

    async def lookup(self, request: EmbeddingsRequest) -> EmbeddingsHit | EmbeddingsMiss:
        """A hit when every input is cached, else the request for the LLM worker and the cached vectors."""
        controls = request.controls
        items = embedding_inputs(request.body)
        keys = [embedding_key(request.tenant, controls.namespace, request.body, item) for item in items]
        lookup = EmbeddingsLookup(keys=keys, store=controls.store)
        if controls.mode == "off":
            LOOKUPS.labels("bypass", "cache_mode_off").inc()
            bypass = lookup.model_copy(update={"status": "BYPASS", "bypass_reason": "cache_mode_off", "store": False})
            return EmbeddingsMiss(for_llm_worker(request, bypass, []), [])
        if not controls.read:
            LOOKUPS.labels("bypass", "cache_control_no_cache").inc()
            bypass = lookup.model_copy(update={"status": "BYPASS", "bypass_reason": "cache_control_no_cache"})
            return EmbeddingsMiss(for_llm_worker(request, bypass, []), [])
        try:
            # One MGET: gets asked for in the same turn of the event loop are batched by the store.
            answers = await asyncio.gather(*(self._exact.get(key) for key in keys))
        except Exception as exc:
            log.warning("embeddings lookup failed, going on without Redis: %s", exc)
            DEGRADED.labels("redis", "lookup").inc()
            LOOKUPS.labels("bypass", "redis_unavailable").inc()
            bypass = lookup.model_copy(update={"status": "BYPASS", "bypass_reason": "redis_unavailable"})
            return EmbeddingsMiss(for_llm_worker(request, bypass, []), [])
        cached = [
            CachedEmbedding(index=i, embedding=answer.completion["embedding"], tokens=answer.usage().prompt)
            for i, answer in enumerate(answers)
            if answer is not None
            and answer.completion.get("object") == EMBEDDING_OBJECT
            and (controls.max_age_seconds is None or answer.age_seconds() <= controls.max_age_seconds)
        ]
        if len(cached) == len(items):
            LOOKUPS.labels("hit_exact", "embeddings").inc()
            vectors = {item.index: item.embedding for item in cached}
            tokens = {item.index: item.tokens for item in cached}
            response = embeddings_response(request.body.get("model"), vectors, tokens)
            return EmbeddingsHit(response, keys, sum(tokens.values()))
        LOOKUPS.labels("miss", "embeddings").inc()
        return EmbeddingsMiss(for_llm_worker(request, lookup, cached), cached)

    async def store(self, event: EmbeddingsGenerated) -> None:
        """Store each vector under its key; a Redis failure is logged and counted, never raised."""
        ttl = event.ttl_seconds or self._default_ttl
        answers = [
            stored_answer(item.key, event.model, item.embedding, item.tokens, event.created_at) for item in event.items
        ]
        try:
            await self._exact.put_many(event.tenant, answers, ttl)
            await self._exact.mark_redis_only(event.tenant, event.namespace, [a.exact_key for a in answers], ttl)
            STORES.labels("redis", "ok").inc()
        except Exception as exc:
            log.warning("storing embeddings in Redis failed: %s", exc)
            STORES.labels("redis", "error").inc()
            DEGRADED.labels("redis", "store").inc()
