"""What the LLM worker tells the rest of the system about an answer: pure builders of its replies' cache
info, the CompletionGenerated to store and the UsageEvent to count (answers in either API format)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from services.llm_worker import anthropic_messages, completions
from shared.contracts.base import CacheInfo, ErrorInfo
from shared.contracts.completions import CompletionRequest, EmbeddingsRequest, LookupContext
from shared.contracts.store_events import CompletionGenerated, FlightEnded, FlightRenewal
from shared.contracts.usage_events import UsageEvent, UsageResult
from shared.pricing import PriceBook
from shared.usage import token_counts, usage_event_id

NO_LOOKUP = LookupContext(status="BYPASS", bypass_reason="no_lookup")


def lookup_of(request: CompletionRequest) -> LookupContext:
    """What the cache worker learnt, or a bypass when the request came without a lookup."""
    return request.lookup or NO_LOOKUP


def cache_info(request: CompletionRequest, upstream_label: str | None) -> CacheInfo:
    """The cache info of a reply the upstream produced (a miss or a bypass)."""
    lookup = lookup_of(request)
    return CacheInfo(
        status=lookup.status, bypass_reason=lookup.bypass_reason, key=lookup.exact_key, upstream=upstream_label
    )


def store_event(
    request: CompletionRequest, completion: dict[str, Any], upstream_label: str | None, cache_tool_calls: bool
) -> tuple[CompletionGenerated | None, str | None]:
    """The event that stores this answer in the cache, or None and why it is not stored."""
    lookup = lookup_of(request)
    if not request.controls.store or not lookup.store:
        return None, "no_store"
    if not lookup.exact_key:
        return None, "no_key"
    if request.protocol == "anthropic":
        cacheable, reason = anthropic_messages.is_cacheable(completion, cache_tool_calls)
    else:
        cacheable, reason = completions.is_cacheable(completion, cache_tool_calls)
    if not cacheable:
        return None, reason
    event = CompletionGenerated(
        event_id=uuid.uuid4().hex,
        tenant=request.tenant,
        namespace=request.controls.namespace,
        model=str(request.body.get("model", "")),
        exact_key=lookup.exact_key,
        completion=completion,
        upstream=upstream_label,
        ttl_seconds=request.controls.ttl_seconds,
        created_at=time.time(),
        flight_id=request.request_id if lookup.flight_leader else None,
    )
    return event, None


def flight_ended(request: CompletionRequest, reason: str) -> FlightEnded | None:
    """Tells the cache worker that this request's single flight ended without an answer to store."""
    lookup = lookup_of(request)
    if not lookup.flight_leader or not lookup.exact_key:
        return None
    return FlightEnded(tenant=request.tenant, exact_key=lookup.exact_key, reason=reason, flight_id=request.request_id)


def flight_renewal(request: CompletionRequest) -> FlightRenewal | None:
    """What keeps this request's single-flight lease alive while it is worked on (None: it leads no flight)."""
    lookup = lookup_of(request)
    if not lookup.flight_leader or not lookup.exact_key or not lookup.flight_lease_seconds:
        return None
    return FlightRenewal(
        exact_key=lookup.exact_key, flight_id=request.request_id, lease_seconds=lookup.flight_lease_seconds
    )


def usage_event(
    request: CompletionRequest,
    prices: PriceBook,
    completion: dict[str, Any] | None = None,
    error: ErrorInfo | None = None,
) -> UsageEvent:
    """The usage record of one request the upstream answered (or failed to answer)."""
    lookup = lookup_of(request)
    tokens = token_counts(completion.get("usage")) if completion is not None else token_counts(None)
    fields = usage_fields(request, *upstream_outcome(lookup.status, lookup.bypass_reason, error))
    model = fields["model"]
    return UsageEvent(
        **fields,
        prompt_tokens=tokens.prompt,
        completion_tokens=tokens.completion,
        cost_usd=prices.cost(model, tokens.prompt, tokens.completion, tokens.cache_read, tokens.cache_write)
        if tokens.total
        else 0.0,
        cache_key=lookup.exact_key,
        similarity=lookup.best_similarity,
        refusals=lookup.refusals,
    )


def upstream_outcome(status: str, bypass_reason: str | None, error: ErrorInfo | None) -> tuple[UsageResult, str | None]:
    """How a request sent upstream counts in the usage log: an error (by its type), a miss, or a bypass and why."""
    if error is not None:
        return "error", error.type
    if status == "MISS":
        return "miss", None
    return "bypass", bypass_reason


def usage_fields(
    request: CompletionRequest | EmbeddingsRequest, result: UsageResult, reason: str | None
) -> dict[str, Any]:
    """The fields of every request's usage record: its ids, who sent it, the model, the outcome, how long it took."""
    now = time.time()
    return {
        "event_id": usage_event_id(request.request_id),
        "request_id": request.request_id,
        "tenant": request.tenant,
        "key_id": request.key_id,
        "namespace": request.controls.namespace,
        "model": str(request.body.get("model", "")),
        "result": result,
        "reason": reason,
        "latency_ms": max(now - request.received_at, 0.0) * 1000,
        "created_at": now,
    }
