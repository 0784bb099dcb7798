"""One request, one trace: the spans of a miss, an exact hit and a semantic hit, across the five services.

The stack exports by OTLP to the receiver of `tests/integration/otlp.py`; each test finds its request's
trace by the `X-Request-Id` its answer carried (the gateway span's attribute) and checks which stages
are in it, in which service, under which parent.
"""

from __future__ import annotations

import uuid
from typing import Any

import openai
import pytest

from tests.integration.otlp import ReceivedSpan, TraceReceiver

pytestmark = pytest.mark.integration

MODEL = "gpt-4o-mini"
SERVER = 2  # SpanKind SERVER in OTLP


def ask(client: openai.OpenAI, tag: str, question: str) -> dict[str, str]:
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL,
        messages=[
            {"role": "system", "content": f"You are a geography tutor ({tag})."},
            {"role": "user", "content": question},
        ],
    )
    raw.parse()
    return dict(raw.headers)


class Trace:
    """The spans of one trace, and the relations between them a test asserts."""

    def __init__(self, spans: list[ReceivedSpan]) -> None:
        self.spans = spans
        self.by_id = {span.span_id: span for span in spans}

    def one(self, name: str) -> ReceivedSpan:
        found = [span for span in self.spans if span.name == name]
        assert len(found) == 1, f"{len(found)} spans named {name!r}: {self.names()}"
        return found[0]

    def names(self) -> list[str]:
        return sorted(span.name for span in self.spans)

    def ancestors(self, span: ReceivedSpan) -> list[ReceivedSpan]:
        chain = []
        while span.parent_id is not None:
            parent = self.by_id.get(span.parent_id)
            assert parent is not None, f"{span.name}'s parent {span.parent_id} is not in the trace: {self.names()}"
            chain.append(parent)
            span = parent
        return chain

    def under(self, child: str, ancestor: str) -> None:
        """`child` descends from `ancestor` (the one span of each name)."""
        assert self.one(ancestor) in self.ancestors(self.one(child)), (
            f"{child} is not under {ancestor}: {[s.name for s in self.ancestors(self.one(child))]}"
        )

    def root(self) -> ReceivedSpan:
        roots = [span for span in self.spans if span.parent_id is None]
        assert len(roots) == 1, f"{len(roots)} roots: {[r.name for r in roots]}"
        return roots[0]


def whole_trace(traces: tuple[TraceReceiver, str], headers: dict[str, str], names: set[str]) -> Trace:
    receiver, _ = traces
    trace = Trace(receiver.wait_for_trace_of(headers["x-request-id"], names))
    root = trace.root()
    assert root.service == "llmcache-gateway" and root.kind == SERVER
    assert root.attributes["llmcache.request_id"] == headers["x-request-id"]
    assert root.attributes["llmcache.cache.result"] == headers["x-cache"]
    return trace


def assert_private(trace: Trace, *secrets: str) -> None:
    """No attribute of any span holds the prompt or the API key."""
    for span in trace.spans:
        for key, value in span.attributes.items():
            for secret in secrets:
                assert secret not in str(value), f"{span.service} {span.name} {key} holds a secret"


def test_a_miss_is_one_trace_through_every_service(client: openai.OpenAI, traces, stack, stored) -> None:
    tag = uuid.uuid4().hex[:8]
    question = f"Which river flows through Vienna? ({tag})"
    headers = ask(client, tag, question)
    assert headers["x-cache"] == "MISS"
    stages = {"cache.lookup", "embed", "vector.search", "upstream.call", "cache.store", "usage.write"}
    trace = whole_trace(traces, headers, stages)

    services = {span.name: span.service for span in trace.spans if span.name in stages}
    assert services == {
        "cache.lookup": "llmcache-cache-worker",
        "embed": "llmcache-embedder",
        "vector.search": "llmcache-cache-worker",
        "upstream.call": "llmcache-llm-worker",
        "cache.store": "llmcache-cache-worker",
        "usage.write": "llmcache-stats-consumer",
    }
    trace.under("cache.lookup", trace.root().name)
    trace.under("embed", "cache.lookup")
    trace.under("vector.search", "cache.lookup")
    trace.under("upstream.call", "cache.lookup")
    trace.under("cache.store", "cache.lookup")
    trace.under("usage.write", "cache.lookup")
    assert trace.one("cache.store").start_ns >= trace.one("upstream.call").start_ns

    lookup = trace.one("cache.lookup").attributes
    assert (lookup["llmcache.cache.result"], lookup["gen_ai.request.model"]) == ("MISS", MODEL)
    call = trace.one("upstream.call").attributes
    assert call["gen_ai.usage.input_tokens"] > 0 and call["gen_ai.usage.output_tokens"] > 0
    assert trace.one("usage.write").attributes["llmcache.cache.result"] == "miss"
    # The broker hops themselves are spans of the trace (aio-pika's instrumentation and ours).
    assert {"llmcache-gateway", "llmcache-cache-worker", "llmcache-embedder", "llmcache-llm-worker"} <= {
        span.service for span in trace.spans
    }
    assert_private(trace, question, stack.env["DEV_API_KEY"])


def test_an_exact_hit_is_answered_by_the_cache_worker_alone(client: openai.OpenAI, traces, stack, stored) -> None:
    tag = uuid.uuid4().hex[:8]
    question = f"Which river flows through Budapest? ({tag})"
    first = ask(client, tag, question)
    stored(first["x-cache-key"], semantic=False)
    headers = ask(client, tag, question)
    assert (headers["x-cache"], headers["x-cache-match"]) == ("HIT", "exact")
    trace = whole_trace(traces, headers, {"cache.lookup", "usage.write"})

    assert not {"embed", "vector.search", "verify", "upstream.call", "cache.store"} & set(trace.names())
    lookup = trace.one("cache.lookup").attributes
    assert (lookup["llmcache.cache.result"], lookup["llmcache.cache.match"]) == ("HIT", "exact")
    trace.under("usage.write", "cache.lookup")  # its batch message carried the request's own context
    assert trace.one("usage.write").attributes["llmcache.cache.result"] == "hit_exact"
    assert_private(trace, question, stack.env["DEV_API_KEY"])


def test_a_semantic_hit_shows_the_search_and_the_verdict(client: openai.OpenAI, traces, stack, stored) -> None:
    tag = uuid.uuid4().hex[:8]
    first = ask(client, tag, "What is the longest river in Europe?")
    stored(first["x-cache-key"])
    headers = ask(client, tag, "what is the longest river in europe")
    assert (headers["x-cache"], headers["x-cache-match"]) == ("HIT", "semantic")
    trace = whole_trace(traces, headers, {"cache.lookup", "embed", "vector.search", "verify", "usage.write"})

    for stage in ("embed", "vector.search", "verify", "usage.write"):
        trace.under(stage, "cache.lookup")
    assert "upstream.call" not in trace.names()
    lookup: dict[str, Any] = trace.one("cache.lookup").attributes
    assert (lookup["llmcache.cache.result"], lookup["llmcache.cache.match"]) == ("HIT", "semantic")
    assert lookup["llmcache.cache.similarity"] == pytest.approx(float(headers["x-cache-similarity"]), abs=1e-3)
    assert trace.one("vector.search").attributes["llmcache.cache.candidates"] >= 1
    assert trace.one("verify").attributes["llmcache.verify.accepted"] is True
    assert_private(trace, "longest river", stack.env["DEV_API_KEY"])
