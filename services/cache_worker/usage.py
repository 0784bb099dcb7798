"""Usage events of cache hits, published in batches: one confirmed message for the hits of many requests.

A hit is the cheap path, and a persistent, confirmed message per hit was a third of its broker
work. The shared `Batcher` gathers them: a batch goes `linger` seconds after its first event (or
when full), and the next one gathers while it is being confirmed. The reply to the user never waits
for any of this.

`publish` returns once the event's batch is confirmed: the lookup's message is acked after that,
so a worker that dies first has its lookups redelivered and their events (ids derived from the
request) sent again, never lost and never counted twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from opentelemetry import context, propagate

from services.cache_worker.metrics import USAGE_BATCH_SIZE
from shared.batching import Batcher
from shared.contracts.usage_events import MAX_USAGE_BATCH, UsageEvent, UsageEventBatch
from shared.tracing import trace_headers

# Publishes one message body durably; returns once the broker confirmed it.
PublishBody = Callable[[bytes], Awaitable[None]]


class UsagePublisher:
    """Gathers usage events while a batch is in flight and publishes them as one UsageEventBatch."""

    def __init__(
        self, publish_body: PublishBody, *, max_batch: int = MAX_USAGE_BATCH, linger_seconds: float = 0.005
    ) -> None:
        if not 1 <= max_batch <= MAX_USAGE_BATCH:
            raise ValueError(f"max_batch must be between 1 and {MAX_USAGE_BATCH}")
        self._publish_body = publish_body
        self._batcher = Batcher(self._send, name="usage", max_size=max_batch, linger=linger_seconds)

    async def publish(self, event: UsageEvent) -> None:
        """Return once the batch holding `event` is confirmed; raise what publishing it raised
        (BatcherClosed after `close`)."""
        headers = trace_headers()
        if headers is not None:  # traced: its usage.write span joins this request's trace
            event = event.model_copy(update={"trace_context": headers})
        await self._batcher.submit(event)

    async def close(self) -> None:
        """Publish what waits (within 5 seconds), then stop; later publishes are refused."""
        await self._batcher.close(timeout=5.0)

    async def _send(self, events: list[UsageEvent]) -> list[None]:
        USAGE_BATCH_SIZE.observe(len(events))
        body = UsageEventBatch(events=events).model_dump_json().encode()
        # The message goes in the trace of its first event (each event names its own for its write).
        first = events[0].trace_context
        token = context.attach(propagate.extract(first)) if first else None
        try:
            await self._publish_body(body)
        finally:
            if token is not None:
                context.detach(token)
        return [None] * len(events)
