"""Distributed tracing: one request is one trace, from the gateway across the broker to every worker.

Off unless `OTEL_EXPORTER_OTLP_ENDPOINT` is set. Then each service exports its spans by OTLP/HTTP;
the maintained instrumentations trace aio-pika (a span per message published or consumed, W3C trace
context carried in the message headers), Redis, psycopg and httpx, and FastAPI in the gateway. The
transient RPC path publishes below aio-pika (`shared.broker.publish_transient`), so it carries the
context itself (`trace_headers`). Each stage adds its own span (`stage`), named for what it does
(`cache.lookup`, `embed`, `vector.search`, `verify`, `upstream.call`, `cache.store`, `usage.write`),
with the outcome as attributes: never a prompt, an answer or a key.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.trace import INVALID_SPAN, ProxyTracerProvider, Span

from shared.settings import BaseServiceSettings

log = logging.getLogger(__name__)

TRACER = trace.get_tracer("llmcache")

# Attribute names of the stage spans (one vocabulary for every service).
REQUEST_ID = "llmcache.request_id"
TENANT = "llmcache.tenant"
CACHE_RESULT = "llmcache.cache.result"
CACHE_MATCH = "llmcache.cache.match"
SIMILARITY = "llmcache.cache.similarity"
CANDIDATES = "llmcache.cache.candidates"
ACCEPTED = "llmcache.verify.accepted"
MODEL = "gen_ai.request.model"
UPSTREAM = "llmcache.upstream"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
TEXTS = "llmcache.embed.texts"
EVENTS = "llmcache.usage.events"


def setup_tracing(service: str, settings: BaseServiceSettings) -> bool:
    """Start exporting this process's spans when an OTLP endpoint is set; True if it did.

    Sampling is decided once, at the request's first span (the gateway's): every later hop follows its
    parent, so a trace is whole or absent, never a fragment.
    """
    endpoint = settings.otel_exporter_otlp_endpoint.strip()
    if not endpoint:
        return False
    # Imported here: a deployment without tracing never loads the SDK and the instrumentations.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.aio_pika import AioPikaInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    provider = TracerProvider(
        resource=Resource.create({SERVICE_NAME: f"llmcache-{service.replace('_', '-')}"}),
        sampler=ParentBased(TraceIdRatioBased(settings.otel_traces_sampler_arg)),
    )
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{endpoint.rstrip('/')}/v1/traces")))
    trace.set_tracer_provider(provider)
    AioPikaInstrumentor().instrument()
    RedisInstrumentor().instrument()
    PsycopgInstrumentor().instrument(enable_commenter=False)
    HTTPXClientInstrumentor().instrument()
    log.info("tracing: exporting spans to %s (sampling %.0f%%)", endpoint, settings.otel_traces_sampler_arg * 100)
    return True


def trace_headers() -> dict[str, Any] | None:
    """The W3C trace context of the current span, as message headers; None when nothing is traced."""
    if not trace.get_current_span().get_span_context().is_valid:
        return None  # tracing off, or this request not sampled: no headers, no cost
    headers: dict[str, Any] = {}
    propagate.inject(headers)
    return headers


def stage(
    name: str, parent: Mapping[str, str] | None = None, **attributes: str | int | float | bool | None
) -> AbstractContextManager[Span]:
    """A span for one stage of a request: child of whatever is current (the message that started it), or
    of `parent`, a request's trace context carried in a message's body (`trace_headers`).

    With tracing off it is a no-op costing a tenth of the API's own no-op span (on the path of every hit).
    """
    if isinstance(trace.get_tracer_provider(), ProxyTracerProvider):  # no SDK set up: tracing is off
        return nullcontext(INVALID_SPAN)
    return _stage_span(name, parent, attributes)


@contextmanager
def _stage_span(
    name: str, parent: Mapping[str, str] | None, attributes: dict[str, str | int | float | bool | None]
) -> Iterator[Span]:
    with TRACER.start_as_current_span(name, context=propagate.extract(parent) if parent else None) as span:
        set_attributes(span, **attributes)
        yield span


def set_attributes(span: Span, **attributes: str | int | float | bool | None) -> None:
    """Set the attributes that have a value (by their keyword's constant name: `request_id=` sets REQUEST_ID)."""
    if not span.is_recording():
        return
    for key, value in attributes.items():
        if value is not None:
            span.set_attribute(_NAMES[key], value)


_NAMES = {
    "request_id": REQUEST_ID,
    "tenant": TENANT,
    "result": CACHE_RESULT,
    "match": CACHE_MATCH,
    "similarity": SIMILARITY,
    "candidates": CANDIDATES,
    "accepted": ACCEPTED,
    "model": MODEL,
    "upstream": UPSTREAM,
    "input_tokens": INPUT_TOKENS,
    "output_tokens": OUTPUT_TOKENS,
    "texts": TEXTS,
    "events": EVENTS,
}
