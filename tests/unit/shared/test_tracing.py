"""Trace context across the broker, with the SDK's in-memory exporter: a transient message carries the
current span, a consumer continues it, and a batch of usage events keeps each request's own trace."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.cache_worker.usage import UsagePublisher
from shared.broker import publish_transient
from shared.contracts.usage_events import UsageEvent, UsageEventBatch
from shared.tracing import stage, trace_headers
from tests.unit.shared.test_broker import Channel

EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module", autouse=True)
def provider() -> Iterator[None]:
    """The SDK as a traced service has it (set once per process: OpenTelemetry's global can't be replaced)."""
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        sdk = TracerProvider()
        sdk.add_span_processor(SimpleSpanProcessor(EXPORTER))
        trace.set_tracer_provider(sdk)
    yield
    EXPORTER.clear()


def event(request_id: str) -> UsageEvent:
    return UsageEvent(
        event_id=f"e-{request_id}", request_id=request_id, tenant="t", model="m", result="hit_exact", created_at=0
    )


async def test_untraced_messages_carry_no_headers() -> None:
    assert trace_headers() is None
    channel = Channel()
    await publish_transient(channel, "x.direct", "x.cache.lookup", b"{}")  # type: ignore[arg-type]
    assert channel.underlay.published[0]["properties"].headers is None


async def test_a_transient_message_carries_the_current_span_and_its_consumer_continues_it() -> None:
    channel = Channel()
    with stage("cache.lookup", request_id="r1") as lookup:
        await publish_transient(channel, "x.direct", "x.embed", b"{}")  # type: ignore[arg-type]
    headers = channel.underlay.published[0]["properties"].headers
    assert headers["traceparent"].split("-")[1:3] == [
        f"{lookup.get_span_context().trace_id:032x}",
        f"{lookup.get_span_context().span_id:016x}",
    ]

    # The consumer's side, as aio-pika's instrumentation does it: extract, then a span under that context.
    with stage("embed", parent=headers):
        pass
    spans = {span.name: span for span in EXPORTER.get_finished_spans()}
    assert spans["embed"].context.trace_id == spans["cache.lookup"].context.trace_id
    assert spans["embed"].parent is not None and spans["embed"].parent.span_id == spans["cache.lookup"].context.span_id
    assert spans["cache.lookup"].attributes == {"llmcache.request_id": "r1"}


async def test_a_usage_batch_keeps_each_request_in_its_own_trace() -> None:
    sent: list[tuple[list[UsageEvent], str | None]] = []

    async def publish_body(body: bytes) -> None:
        current = trace_headers()  # the context the batch message is published in
        sent.append((UsageEventBatch.model_validate_json(body).events, current and current["traceparent"]))

    publisher = UsagePublisher(publish_body, linger_seconds=0.02)

    async def hit(request_id: str) -> str:
        with stage("cache.lookup", request_id=request_id) as span:
            await publisher.publish(event(request_id))
            return f"{span.get_span_context().trace_id:032x}"

    # Two requests in one batch, then a third alone, after the sender task (made in the first's context) ran.
    first, second = await asyncio.gather(hit("a"), hit("b"))
    third = await hit("c")
    await publisher.close()

    [(batch, batch_context), (alone, alone_context)] = sent
    traces = {e.request_id: propagate.extract(e.trace_context or {}) for e in batch + alone}
    trace_of = {rid: f"{trace.get_current_span(ctx).get_span_context().trace_id:032x}" for rid, ctx in traces.items()}
    assert trace_of == {"a": first, "b": second, "c": third}
    assert batch_context is not None and first in batch_context  # the message joins its first event's trace
    assert alone_context is not None and third in alone_context  # not the first request's, long answered
