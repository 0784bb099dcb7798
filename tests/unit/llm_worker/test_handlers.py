"""The request handler end to end against the mock upstream, with the broker replaced by recording fakes."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from services.llm_worker.handlers import LlmRequestHandler
from services.llm_worker.metrics import EVENT_PUBLISH_FAILURES, EXPIRED
from services.llm_worker.settings import Settings
from services.llm_worker.upstreams import Upstreams
from shared import worker as worker_module
from shared.contracts.base import ErrorReply
from shared.contracts.completions import (
    REPLY_ADAPTER,
    CacheControls,
    ChunkReply,
    CompletionReply,
    CompletionRequest,
    EmbeddingsLookup,
    EmbeddingsRequest,
    EndReply,
    LookupContext,
)
from shared.contracts.store_events import CompletionGenerated
from shared.contracts.usage_events import UsageEvent
from shared.pricing import PriceBook
from shared.topology import Topology
from shared.worker import Retryable
from tests.unit.fakes import ReplyChannel
from tests.unit.llm_worker.scripted import ScriptedProvider

TOPOLOGY = Topology("unit-llm")


@dataclass
class FakeMessage:
    """What the handler reads of an incoming message."""

    body: bytes
    reply_to: str | None = "reply-queue"
    correlation_id: str | None = field(default_factory=lambda: uuid.uuid4().hex)


@dataclass
class FakeExchange:
    """Records what is published; can be told to fail."""

    published: list[tuple[str, bytes]] = field(default_factory=list)
    fail: bool = False

    async def publish(self, message: Any, routing_key: str, **_: Any) -> None:
        if self.fail:
            raise ConnectionError("broker gone")
        self.published.append((routing_key, message.body))


class FakeChannel(ReplyChannel):
    def __init__(self) -> None:
        super().__init__(FakeExchange())


@dataclass
class Harness:
    handler: LlmRequestHandler
    channel: FakeChannel
    events: FakeExchange

    def replies(self) -> list[Any]:
        return [REPLY_ADAPTER.validate_json(body) for _, body in self.channel.default_exchange.published]

    def stored(self) -> list[CompletionGenerated]:
        return [
            CompletionGenerated.model_validate_json(body)
            for key, body in self.events.published
            if key == TOPOLOGY.cache_store
        ]

    def usage(self) -> list[UsageEvent]:
        return [
            UsageEvent.model_validate_json(body) for key, body in self.events.published if key == TOPOLOGY.usage_events
        ]


def harness_for(upstreams: Upstreams) -> Harness:
    channel, events = FakeChannel(), FakeExchange()
    handler = LlmRequestHandler(
        upstreams,
        PriceBook(),
        channel,  # type: ignore[arg-type]
        events,  # type: ignore[arg-type]
        TOPOLOGY,
        upstream_timeout=10,
        cache_tool_calls=False,
    )
    return Harness(handler, channel, events)


@pytest.fixture
async def harness(mock_url: str, control: httpx.AsyncClient) -> AsyncIterator[Harness]:
    settings = Settings(mock_upstream_url=f"{mock_url}/v1", upstream_max_retries=0)
    upstreams = Upstreams.from_configs(settings.upstreams(), timeout=10, max_retries=0)
    yield harness_for(upstreams)
    await upstreams.close()


def request(content: str = "What is a cache?", *, stream: bool = False, lookup: bool = True, **body: Any) -> bytes:
    now = time.time()
    return (
        CompletionRequest(
            request_id="req-1",
            tenant="t1",
            received_at=now,
            deadline=now + 30,
            stream=stream,
            body={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}], "stream": stream, **body},
            controls=CacheControls(namespace="ns", ttl_seconds=60),
            lookup=LookupContext(status="MISS", exact_key="k1") if lookup else None,
        )
        .model_dump_json()
        .encode()
    )


async def test_non_stream_miss_replies_stores_and_counts(harness: Harness) -> None:
    await harness.handler(FakeMessage(request()))  # type: ignore[arg-type]
    [answer] = harness.replies()
    assert isinstance(answer, CompletionReply)
    assert (answer.cache.status, answer.cache.key, answer.cache.upstream) == ("MISS", "k1", "mock")
    assert answer.completion["choices"][0]["finish_reason"] == "stop"
    [stored] = harness.stored()
    assert (stored.exact_key, stored.namespace, stored.tenant) == ("k1", "ns", "t1")
    assert (stored.model, stored.ttl_seconds, stored.upstream) == ("gpt-4o-mini", 60, "mock")
    assert stored.completion == answer.completion
    [usage] = harness.usage()
    assert (usage.result, usage.request_id, usage.model) == ("miss", "req-1", "gpt-4o-mini")
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.cost_usd > 0  # gpt-4o-mini has a price
    assert usage.latency_ms >= 0


async def test_stream_miss_forwards_chunks_without_usage_the_client_did_not_ask_for(harness: Harness) -> None:
    await harness.handler(FakeMessage(request(stream=True)))  # type: ignore[arg-type]
    replies = harness.replies()
    chunks, end = replies[:-1], replies[-1]
    assert all(isinstance(r, ChunkReply) for r in chunks)
    assert isinstance(end, EndReply) and end.seq == len(chunks)
    assert [r.seq for r in chunks] == list(range(len(chunks)))
    assert chunks[0].cache is not None and chunks[0].cache.status == "MISS" and chunks[0].cache.upstream == "mock"
    assert all(r.cache is None for r in chunks[1:])
    assert all("usage" not in r.chunk and r.chunk["choices"] for r in chunks)
    [stored] = harness.stored()
    text = "".join(r.chunk["choices"][0]["delta"].get("content") or "" for r in chunks)
    assert stored.completion["choices"][0]["message"]["content"] == text
    assert stored.completion["usage"]["total_tokens"] > 0  # asked for on the client's behalf
    assert harness.usage()[0].completion_tokens > 0


async def test_stream_forwards_the_usage_chunk_when_the_client_asked(harness: Harness) -> None:
    await harness.handler(FakeMessage(request(stream=True, stream_options={"include_usage": True})))  # type: ignore[arg-type]
    replies = harness.replies()
    assert isinstance(replies[-2], ChunkReply)
    assert replies[-2].chunk["choices"] == [] and replies[-2].chunk["usage"]["total_tokens"] > 0


async def test_upstream_error_replies_with_error_and_stores_nothing(
    harness: Harness, control: httpx.AsyncClient
) -> None:
    await control.post("/_mock/faults", json={"status": 429, "count": 1})
    await harness.handler(FakeMessage(request()))  # type: ignore[arg-type]
    [answer] = harness.replies()
    assert isinstance(answer, ErrorReply)
    assert (answer.error.status, answer.error.code) == (429, "rate_limit_exceeded")
    assert harness.stored() == []
    [usage] = harness.usage()
    assert (usage.result, usage.reason, usage.prompt_tokens) == ("error", "requests", 0)


async def test_mid_stream_error_follows_the_chunks_already_sent(harness: Harness, control: httpx.AsyncClient) -> None:
    await control.post("/_mock/faults", json={"status": 500, "count": 1, "after_chunks": 3})
    await harness.handler(FakeMessage(request(stream=True)))  # type: ignore[arg-type]
    replies = harness.replies()
    assert [type(r) for r in replies] == [ChunkReply, ChunkReply, ChunkReply, ErrorReply]
    assert harness.stored() == []
    assert harness.usage()[0].result == "error"


async def test_expired_requests_are_dropped(harness: Harness, control: httpx.AsyncClient) -> None:
    before = EXPIRED._value.get()
    now = time.time()
    expired = CompletionRequest(
        request_id="old", tenant="t1", received_at=now - 60, deadline=now - 1, body={"model": "m", "messages": []}
    )
    await harness.handler(FakeMessage(expired.model_dump_json().encode()))  # type: ignore[arg-type]
    assert harness.replies() == [] and harness.events.published == []
    assert EXPIRED._value.get() == before + 1
    assert (await control.get("/_mock/stats")).json()["chat_calls"] == 0


async def test_without_lookup_it_is_a_bypass_and_not_stored(harness: Harness) -> None:
    await harness.handler(FakeMessage(request(lookup=False)))  # type: ignore[arg-type]
    [answer] = harness.replies()
    assert isinstance(answer, CompletionReply)
    assert (answer.cache.status, answer.cache.bypass_reason) == ("BYPASS", "no_lookup")
    assert harness.stored() == []
    [usage] = harness.usage()
    assert (usage.result, usage.reason) == ("bypass", "no_lookup")


async def test_truncated_answers_are_not_stored(harness: Harness) -> None:
    await harness.handler(FakeMessage(request(max_tokens=3)))  # type: ignore[arg-type]
    assert isinstance(harness.replies()[0], CompletionReply)
    assert harness.stored() == []
    assert harness.usage()[0].result == "miss"


async def test_a_refused_event_is_retried_until_the_broker_takes_it(harness: Harness) -> None:
    harness.events.fail = True

    async def broker_back() -> None:
        await asyncio.sleep(0.5)
        harness.events.fail = False

    back = asyncio.create_task(broker_back())
    await harness.handler(FakeMessage(request()))  # type: ignore[arg-type]
    await back
    assert isinstance(harness.replies()[0], CompletionReply)
    assert {key for key, _ in harness.events.published} == {TOPOLOGY.cache_store, TOPOLOGY.usage_events}


async def test_an_event_never_taken_requeues_the_delivered_request(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker_module, "PUBLISH_PATIENCE_SECONDS", 0.3)
    before = EVENT_PUBLISH_FAILURES.labels("completion_generated")._value.get()
    harness.events.fail = True
    with pytest.raises(Retryable):  # the worker requeues the message: never acked without its events
        await harness.handler(FakeMessage(request()))  # type: ignore[arg-type]
    assert isinstance(harness.replies()[0], CompletionReply)  # the answer was delivered all the same
    assert EVENT_PUBLISH_FAILURES.labels("completion_generated")._value.get() == before + 1


@pytest.mark.parametrize("stream", [False, True])
async def test_a_requeued_request_publishes_its_answer_again_without_calling_the_upstream_twice(
    harness: Harness, control: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, stream: bool
) -> None:
    monkeypatch.setattr(worker_module, "PUBLISH_PATIENCE_SECONDS", 0.3)
    delivered = request(stream=stream)
    harness.events.fail = True
    with pytest.raises(Retryable):
        await harness.handler(FakeMessage(delivered))  # type: ignore[arg-type]
    replies = len(harness.replies())
    harness.events.fail = False
    await harness.handler(FakeMessage(delivered))  # type: ignore[arg-type]  # the requeued message, redelivered
    assert (await control.get("/_mock/stats")).json()["calls_by_prompt"][
        "What is a cache?"
    ] == 1  # the upstream was not asked (and paid) again
    assert len(harness.replies()) == replies  # nor was the client's answer sent again
    [stored] = harness.stored()
    [usage] = harness.usage()
    assert usage.request_id == "req-1" and usage.completion_tokens > 0 and stored.exact_key == "k1"


# --- upstream answers the mock never sends: a 502, never a crashed handler (retried, billed twice) ---


def embeddings_request(inputs: list[str]) -> bytes:
    now = time.time()
    lookup = EmbeddingsLookup(keys=[f"k{i}" for i in range(len(inputs))])
    body = {"model": "text-embedding-3-small", "input": inputs}
    work = EmbeddingsRequest(
        request_id="e-1", tenant="t1", received_at=now, deadline=now + 30, body=body, lookup=lookup
    )
    return work.model_dump_json().encode()


@pytest.mark.parametrize(
    "answer",
    [
        {"data": [1, 2], "usage": {"prompt_tokens": 2}},
        {"data": [{"index": None, "embedding": [1.0]}, {"index": 0, "embedding": [2.0]}]},
        {"data": [{"index": 0, "embedding": [1.0]}, {"index": 1, "embedding": [2.0]}], "usage": {"prompt_tokens": "x"}},
        {"data": "vectors"},
        ["not", "an", "object"],
    ],
)
async def test_an_embeddings_answer_that_is_not_one_is_a_502(answer: Any) -> None:
    harness = harness_for(Upstreams([ScriptedProvider("openai", embeddings=answer)]))
    await harness.handler(FakeMessage(embeddings_request(["a", "b"])))  # type: ignore[arg-type]
    [reply] = harness.replies()
    assert isinstance(reply, ErrorReply)
    assert (reply.error.status, reply.error.type) == (502, "upstream_error")
    assert [key for key, _ in harness.events.published] == [TOPOLOGY.usage_events]  # nothing stored
    assert harness.usage()[0].result == "error"


MESSAGE_START = {"type": "message_start", "message": {"id": "msg_1", "model": "claude-x", "usage": {"input_tokens": 5}}}


@pytest.mark.parametrize(
    ("protocol", "events"),
    [
        (  # a delta whose index is null
            "anthropic",
            [
                MESSAGE_START,
                {"type": "content_block_delta", "index": None, "delta": {"type": "text_delta", "text": "Hi"}},
            ],
        ),
        (  # tool input for a block that never started
            "anthropic",
            [
                MESSAGE_START,
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "input_json_delta", "partial_json": "{}"},
                },
                {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 3}},
                {"type": "message_stop"},
            ],
        ),
        (  # choices that are not objects
            "openai",
            [{"id": "c1", "model": "gpt-x", "choices": [{"index": 0, "delta": {"content": "Hi"}}, "not a choice"]}],
        ),
    ],
)
async def test_a_relayed_stream_that_cannot_be_assembled_ends_with_an_error(protocol: Any, events: list[Any]) -> None:
    harness = harness_for(Upstreams([ScriptedProvider(protocol, events=events)]))
    body: dict[str, Any] = {"model": "any", "messages": [{"role": "user", "content": "Hi"}], "stream": True}
    if protocol == "anthropic":
        body["max_tokens"] = 10
    now = time.time()
    work = CompletionRequest(
        request_id="s-1", tenant="t1", received_at=now, deadline=now + 30, stream=True, body=body, protocol=protocol
    )
    await harness.handler(FakeMessage(work.model_dump_json().encode()))  # type: ignore[arg-type]
    replies = harness.replies()
    assert [type(r) for r in replies] == [ChunkReply] * len(events) + [ErrorReply]  # the chunks sent stay sent
    assert (replies[-1].error.status, replies[-1].error.type) == (502, "upstream_error")
    assert harness.stored() == []
    assert harness.usage()[0].result == "error"
