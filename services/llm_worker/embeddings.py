"""Embeddings requests in the LLM worker, as pure functions: the request holds only the inputs the cache did
not hold; ask the upstream for them, answer with their vectors at their places in the client's request
(the gateway adds the cached ones, which the cache worker sent it), and say what to store and to count.

OpenAI reports one token count for a whole batch; each input's share (stored with its vector, so a
later hit knows what it saved) is exact for token-array inputs and in proportion to length for text.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from services.llm_worker.events import upstream_outcome, usage_fields
from shared.contracts.base import CacheInfo, ErrorInfo
from shared.contracts.completions import EmbeddingsLookup, EmbeddingsRequest
from shared.contracts.store_events import EmbeddingsGenerated, GeneratedEmbedding
from shared.contracts.usage_events import UsageEvent
from shared.embeddings import embedding_inputs
from shared.pricing import PriceBook

NO_LOOKUP = EmbeddingsLookup(status="BYPASS", bypass_reason="no_lookup", store=False)


@dataclass(frozen=True)
class Fetched:
    """The upstream's vectors and tokens, one per input of the request, in its order."""

    model: Any
    vectors: list[Any]
    tokens: list[int]


def lookup_of(request: EmbeddingsRequest) -> EmbeddingsLookup:
    return request.lookup or NO_LOOKUP


def places(request: EmbeddingsRequest) -> list[int]:
    """Where each input of the request is in the client's (its own order when none was cached)."""
    indexes = lookup_of(request).indexes
    return list(indexes) if indexes is not None else list(range(len(embedding_inputs(request.body))))


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


def fetched(request: EmbeddingsRequest, upstream: Any) -> Fetched:
    """The upstream's answer for the request's inputs, read (ValueError, TypeError, ... if it is not one)."""
    items = embedding_inputs(request.body)
    listed = upstream.get("data")
    if not isinstance(listed, list):
        raise ValueError("the upstream's answer has no list of embeddings")
    # In the inputs' order (OpenAI numbers them; a server that does not keeps their order).
    data = [item for _, item in sorted(enumerate(listed), key=lambda pair: pair[1].get("index", pair[0]))]
    if len(data) != len(items):
        raise ValueError(f"the upstream returned {len(data)} embeddings for {len(items)} inputs")
    total = int((upstream.get("usage") or {}).get("prompt_tokens") or 0)
    vectors = [item["embedding"] for item in data]
    return Fetched(upstream.get("model") or request.body.get("model"), vectors, split_tokens(items, total))


def response(request: EmbeddingsRequest, fetched: Fetched) -> dict[str, Any]:
    """OpenAI's embeddings list for the request's inputs, each at its place in the client's request."""
    data = [
        {"object": "embedding", "index": index, "embedding": vector}
        for index, vector in zip(places(request), fetched.vectors, strict=True)
    ]
    tokens = sum(fetched.tokens)
    return {
        "object": "list",
        "data": data,
        "model": fetched.model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def cache_info(request: EmbeddingsRequest, upstream_label: str | None) -> CacheInfo:
    lookup = lookup_of(request)
    return CacheInfo(
        status=lookup.status,
        bypass_reason=lookup.bypass_reason,
        upstream=upstream_label,
        inputs_cached=lookup.inputs_cached,
        inputs=lookup.inputs_cached + len(embedding_inputs(request.body)),
    )


def store_event(request: EmbeddingsRequest, fetched: Fetched) -> EmbeddingsGenerated | None:
    """The vectors to store, each under its input's key (None when the request may not be stored)."""
    lookup = lookup_of(request)
    if not request.controls.store or not lookup.store or len(lookup.keys) != len(fetched.vectors):
        return None
    items = [
        GeneratedEmbedding(key=key, embedding=vector, tokens=share)
        for key, vector, share in zip(lookup.keys, fetched.vectors, fetched.tokens, strict=True)
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
    fields = usage_fields(request, *upstream_outcome(lookup.status, lookup.bypass_reason, error))
    model = fields["model"]
    spent = sum(new_tokens)
    saved = lookup.tokens_saved if error is None else 0
    return UsageEvent(
        **fields,
        prompt_tokens=spent,
        cost_usd=prices.cost(model, spent, 0) if spent else 0.0,
        tokens_saved=saved,
        cost_saved_usd=prices.cost(model, saved, 0) if saved else 0.0,
    )
