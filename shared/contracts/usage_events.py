"""Usage events (`usage.events`, durable): one per answered request, from the cache worker (hits, in
batches) and the LLM worker (misses, bypasses, errors), to the stats consumer.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, TypeAdapter

from shared.contracts.base import Contract

UsageResult = Literal["hit_exact", "hit_semantic", "miss", "bypass", "error"]


MAX_USAGE_BATCH = 1000  # events per UsageEventBatch message


class UsageEvent(Contract):
    """One answered request, for the usage log and the stats."""

    type: Literal["usage"] = "usage"
    event_id: str
    request_id: str
    tenant: str
    key_id: str | None = None
    namespace: str = "default"
    model: str
    result: UsageResult
    reason: str | None = None  # bypass or error reason
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0  # what this request cost upstream (misses)
    tokens_saved: int = 0  # hits: tokens the upstream would have processed
    cost_saved_usd: float = 0.0  # hits: what the upstream would have charged
    latency_ms: float = 0.0
    created_at: float
    # The entry behind the answer: a hit's entry, or the key a miss's answer is stored under.
    cache_key: str | None = None
    # Semantic hits: the served entry's similarity; misses: the nearest candidate's (refused).
    similarity: float | None = None
    refusals: list[str] = Field(default_factory=list)  # refused semantic candidates, by reason
    # The request's W3C trace context (traceparent, tracestate), when it is traced: a batch carries the
    # events of many requests, and each one's `usage.write` span belongs to its own request's trace.
    trace_context: dict[str, str] | None = None


class UsageEventBatch(Contract):
    """The usage events of several requests in one message: the cache worker sends its hits' events so.

    One persistent, confirmed message for many hits instead of one each: the broker's and the stats
    consumer's cost per hit falls with the batch size.
    """

    type: Literal["usage_batch"] = "usage_batch"
    events: list[UsageEvent] = Field(min_length=1, max_length=MAX_USAGE_BATCH)


def _usage_message_type(value: Any) -> str:
    # A single event may come without its `type` (it has a default): it is a plain UsageEvent then.
    if isinstance(value, dict):
        return str(value.get("type", "usage"))
    return str(getattr(value, "type", "usage"))


UsageMessage = Annotated[
    Annotated[UsageEvent, Tag("usage")] | Annotated[UsageEventBatch, Tag("usage_batch")],
    Discriminator(_usage_message_type),
]


USAGE_MESSAGE_ADAPTER: TypeAdapter[UsageMessage] = TypeAdapter(UsageMessage)
