"""Embeddings requests in the LLM worker, as pure functions: ask the upstream only for the inputs the cache
did not hold, put its vectors and the cached ones back in the request's order, and say what to store
and to count.

OpenAI reports one token count for a whole batch; each input's share (stored with its vector, so a
later hit knows what it saved) is exact for token-array inputs and in proportion to length for text.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from shared.contracts import (
    CacheInfo,
    EmbeddingsGenerated,
    EmbeddingsLookup,
    EmbeddingsRequest,
    ErrorInfo,
    GeneratedEmbedding,
    UsageEvent,
    UsageResult,
)
from shared.embeddings import embedding_inputs, embeddings_response
from shared.pricing import PriceBook
from shared.usage import usage_event_id

NO_LOOKUP = EmbeddingsLookup(status="BYPASS", bypass_reason="no_lookup", store=False)


def lookup_of(request: EmbeddingsRequest) -> EmbeddingsLookup:
    return request.lookup or NO_LOOKUP


def missing_indexes(request: EmbeddingsRequest) -> list[int]:
    """Positions of the inputs the upstream has to embed, in order."""
    cached = {item.index for item in lookup_of(request).cached}
    return [i for i in range(len(embedding_inputs(request.body))) if i not in cached]


def upstream_payload(request: EmbeddingsRequest, missing: list[int]) -> dict[str, Any]:
    """The request as sent upstream: the same parameters, only the missing inputs."""
    items = embedding_inputs(request.body)
    return {**request.body, "input": [items[i] for i in missing]}


def split_tokens(items: list[Any], total: int) -> list[int]:
    """Each input's share of a batch's `total` tokens: a token array's length, the rest by text length
    (largest remainders get the odd tokens, so the shares add up to the total)."""
    exact = {i: len(item) for i, item in enumerate(items) if isinstance(item, list)}
    left = max(total - sum(exact.values()), 0)
    texts = {i: max(len(str(item)), 1) for i, item in enumerate(items) if i not in exact}
    weight = sum(texts.values())
    shares = dict(exact)
    if texts:
        raw = {i: left * length / weight for i, length in texts.items()}
        shares.update({i: int(value) for i, value in raw.items()})
        leftover = left - sum(int(value) for value in raw.values())
        for i in sorted(raw, key=lambda i: raw[i] - int(raw[i]), reverse=True)[:leftover]:
            shares[i] += 1
    return [shares[i] for i in range(len(items))]


def merge(
    request: EmbeddingsRequest, missing: list[int], upstream: dict[str, Any] | None
) -> tuple[dict[str, Any], list[int]]:
    """The response the client gets (every input, in order) and the upstream's tokens per missing input."""
    items = embedding_inputs(request.body)
    vectors: dict[int, Any] = {item.index: item.embedding for item in lookup_of(request).cached}
    tokens: dict[int, int] = {item.index: item.tokens for item in lookup_of(request).cached}
    new_tokens: list[int] = []
    model = request.body.get("model")
    if upstream is not None:
        data = sorted(upstream.get("data") or [], key=lambda d: d.get("index", 0))
        if len(data) != len(missing):
            raise ValueError(f"the upstream returned {len(data)} embeddings for {len(missing)} inputs")
        total = int((upstream.get("usage") or {}).get("prompt_tokens") or 0)
        new_tokens = split_tokens([items[i] for i in missing], total)
        for position, item, share in zip(missing, data, new_tokens, strict=True):
            vectors[position] = item.get("embedding")
            tokens[position] = share
        model = upstream.get("model") or model
    response = embeddings_response(model, vectors, tokens)
    return response, new_tokens


def cache_info(request: EmbeddingsRequest, upstream_label: str | None) -> CacheInfo:
    lookup = lookup_of(request)
    return CacheInfo(
        status=lookup.status,
        bypass_reason=lookup.bypass_reason,
        upstream=upstream_label,
        inputs_cached=len(lookup.cached),
        inputs=len(embedding_inputs(request.body)),
    )


def store_event(
    request: EmbeddingsRequest, response: dict[str, Any], missing: list[int], new_tokens: list[int]
) -> EmbeddingsGenerated | None:
    """The vectors to store, each under its input's key (None when the request may not be stored)."""
    lookup = lookup_of(request)
    if (
        not request.controls.store
        or not lookup.store
        or len(lookup.keys) != len(embedding_inputs(request.body))
        or not missing
    ):
        return None
    data = response["data"]
    items = [
        GeneratedEmbedding(key=lookup.keys[i], embedding=data[i]["embedding"], tokens=share)
        for i, share in zip(missing, new_tokens, strict=True)
    ]
    return EmbeddingsGenerated(
        event_id=uuid.uuid4().hex,
        tenant=request.tenant,
        namespace=request.controls.namespace,
        model=str(request.body.get("model", "")),
        items=items,
        ttl_seconds=request.controls.ttl_seconds,
        created_at=time.time(),
    )


def usage_event(
    request: EmbeddingsRequest, prices: PriceBook, new_tokens: list[int], error: ErrorInfo | None = None
) -> UsageEvent:
    """The usage record: the upstream's tokens and cost, and what the cached inputs saved."""
    lookup = lookup_of(request)
    model = str(request.body.get("model", ""))
    spent = sum(new_tokens)
    saved = sum(item.tokens for item in lookup.cached)
    result: UsageResult
    if error is not None:
        result, reason = "error", error.type
    elif lookup.status == "MISS":
        result, reason = "miss", None
    else:
        result, reason = "bypass", lookup.bypass_reason
    now = time.time()
    return UsageEvent(
        event_id=usage_event_id(request.request_id),
        request_id=request.request_id,
        tenant=request.tenant,
        key_id=request.key_id,
        namespace=request.controls.namespace,
        model=model,
        result=result,
        reason=reason,
        prompt_tokens=spent,
        cost_usd=prices.cost(model, spent, 0) if spent else 0.0,
        tokens_saved=saved if error is None else 0,
        cost_saved_usd=prices.cost(model, saved, 0) if saved and error is None else 0.0,
        latency_ms=max(now - request.received_at, 0.0) * 1000,
        created_at=now,
    )
