"""The cache worker's broker handlers with a fake reply channel and fake logic: what a hit's reply and usage
event say, where a miss and a waiter go and with what, what is dropped, and which failure is retried or only
counted. (Answering a flight's waiters together and forwarding its leader: test_flight_handlers.py; the admin
handler's 400: test_admin_handler.py.)"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from prometheus_client import REGISTRY

from services.cache_worker.embeddings import EmbeddingsHit, EmbeddingsMiss
from services.cache_worker.entries import CachedAnswer
from services.cache_worker.feedback import Served
from services.cache_worker.flights import ReplyRoute, Waiter
from services.cache_worker.handlers import CacheHandlers
from services.cache_worker.lookup import Following, Hit, Miss
from shared.contracts.completions import (
    CacheControls,
    CachedEmbedding,
    CompletionReply,
    CompletionRequest,
    EmbeddingsCached,
    EmbeddingsRequest,
    LookupContext,
)
from shared.contracts.store_events import (
    CompletionGenerated,
    EmbeddingsGenerated,
    FlightEnded,
    FlightRenewal,
    GeneratedEmbedding,
)
from shared.contracts.usage_events import UsageEvent
from shared.pricing import PriceBook
from shared.topology import Topology
from shared.worker import Retryable
from tests.unit.fakes import ReplyChannel

TOPOLOGY = Topology("unit-handlers")
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "What is the capital of France?"}]}


@dataclass
class Sent:
    routing_key: str
    body: dict[str, Any]
    correlation_id: str | None
    reply_to: str | None
    expiration: str | None


@dataclass
class Exchange:
    """What is published on the fast channel; `fail` refuses every publish (the connection is down)."""

    fail: bool = False
    sent: list[Sent] = field(default_factory=list)

    async def publish(self, message: Any, routing_key: str, **_: Any) -> None:
        if self.fail:
            raise ConnectionError("broker gone")
        body = orjson.loads(message.body)
        self.sent.append(Sent(routing_key, body, message.correlation_id, message.reply_to, message.expiration))


class Recorded:
    """Records what each of its async or plain methods is called with; `outcome` is what they return."""

    def __init__(self, outcome: Any = None, fail: Exception | None = None) -> None:
        self.outcome = outcome
        self.fail = fail
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, name: str) -> Any:
        async def call(*args: Any) -> Any:
            self.calls.append((name, args))
            if self.fail is not None:
                raise self.fail
            return self.outcome

        return call


class Hits:
    def __init__(self) -> None:
        self.recorded: list[tuple[str, str]] = []

    def record(self, tenant: str, key: str) -> None:
        self.recorded.append((tenant, key))


class Usage:
    def __init__(self) -> None:
        self.events: list[UsageEvent] = []

    async def publish(self, event: UsageEvent) -> None:
        self.events.append(event)


class ServedPairs:
    def __init__(self) -> None:
        self.served: list[Served] = []

    def record(self, served: Served) -> None:
        self.served.append(served)


@dataclass
class Setup:
    handlers: CacheHandlers
    exchange: Exchange
    hits: Hits
    usage: Usage
    served: ServedPairs
    lookup: Recorded
    storer: Recorded
    embeddings: Recorded
    exact: Recorded


def setup(outcome: Any = None, *, embeddings: Any = None, exact_fails: bool = False) -> Setup:
    exchange, hits, usage, served = Exchange(), Hits(), Usage(), ServedPairs()
    lookup, storer = Recorded(outcome), Recorded()
    embeddings_cache = Recorded(embeddings)
    exact = Recorded(True, fail=ConnectionError("Redis gone") if exact_fails else None)
    worker = SimpleNamespace(fast_channel=ReplyChannel(exchange), topology=TOPOLOGY)
    handlers = CacheHandlers(
        worker,  # type: ignore[arg-type]
        lookup,  # type: ignore[arg-type]
        storer,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        hits,  # type: ignore[arg-type]
        usage,  # type: ignore[arg-type]
        PriceBook(),
        embeddings_cache,  # type: ignore[arg-type]
        exact,  # type: ignore[arg-type]
        served,  # type: ignore[arg-type]
    )
    return Setup(handlers, exchange, hits, usage, served, lookup, storer, embeddings_cache, exact)


def completion_request(name: str = "r1", deadline_in: float = 30.0, **fields: Any) -> CompletionRequest:
    now = time.time()
    values: dict[str, Any] = {"request_id": name, "tenant": "acme", "key_id": "key-9", "body": BODY}
    return CompletionRequest(received_at=now, deadline=now + deadline_in, **{**values, **fields})


def message(request: CompletionRequest | EmbeddingsRequest) -> Any:
    return SimpleNamespace(
        body=request.model_dump_json().encode(), reply_to="gateway-replies", correlation_id=request.request_id
    )


def stored_answer() -> CachedAnswer:
    completion = {
        "id": "chatcmpl-stored",
        "object": "chat.completion",
        "created": 1,
        "choices": [{"message": {"role": "assistant", "content": "Paris."}}],
        "usage": {"prompt_tokens": 14, "completion_tokens": 3, "total_tokens": 17},
    }
    return CachedAnswer("entry-1", "key-1", "gpt-4o-mini", completion, time.time() - 90, upstream="openai")


def counted(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_request_past_its_deadline_is_dropped_unanswered() -> None:
    s = setup(Hit(stored_answer(), "exact"))
    before = counted("llmcache_cache_expired_requests_total")
    await s.handlers.on_lookup(message(completion_request(deadline_in=-1)))
    assert s.lookup.calls == [] and s.exchange.sent == [] and s.usage.events == []
    assert counted("llmcache_cache_expired_requests_total") == before + 1


async def test_a_hit_is_answered_on_the_requests_reply_queue_and_counted_as_saved() -> None:
    s = setup(Hit(stored_answer(), "semantic", similarity=0.912345, refusals=("number_mismatch",)))
    await s.handlers.on_lookup(message(completion_request("r1")))

    [sent] = s.exchange.sent
    assert (sent.routing_key, sent.correlation_id) == ("gateway-replies", "r1")
    reply = CompletionReply.model_validate(sent.body)
    assert (reply.cache.status, reply.cache.match, reply.cache.similarity) == ("HIT", "semantic", 0.9123)
    assert (reply.cache.key, reply.cache.upstream, reply.cache.coalesced) == ("key-1", "openai", False)
    assert reply.cache.age_seconds is not None and reply.cache.age_seconds >= 90
    assert reply.completion["choices"][0]["message"]["content"] == "Paris."
    assert reply.completion["id"].startswith("chatcmpl-") and reply.completion["id"] != "chatcmpl-stored"
    assert s.hits.recorded == [("acme", "key-1")]

    [event] = s.usage.events
    assert (event.event_id, event.request_id, event.tenant, event.key_id) == ("req-r1", "r1", "acme", "key-9")
    assert (event.result, event.reason, event.tokens_saved) == ("hit_semantic", None, 17)
    assert (event.cache_key, event.similarity, event.refusals) == ("key-1", 0.9123, ["number_mismatch"])
    assert event.cost_saved_usd > 0  # what the upstream would have charged for gpt-4o-mini


async def test_a_semantic_hit_is_kept_for_wrong_hit_reports_unless_the_request_said_no_store() -> None:
    s = setup(Hit(stored_answer(), "semantic", similarity=0.93))
    await s.handlers.on_lookup(message(completion_request("r1")))
    [served] = s.served.served
    assert (served.request_id, served.entry_id, served.entry_key) == ("r1", "entry-1", "key-1")
    assert served.asked_prompt == "What is the capital of France?" and served.similarity == 0.93

    await s.handlers.on_lookup(message(completion_request("r2", controls=CacheControls(store=False))))
    s.lookup.outcome = Hit(stored_answer(), "exact")
    await s.handlers.on_lookup(message(completion_request("r3")))
    assert [p.request_id for p in s.served.served] == ["r1"]  # neither no-store nor an exact hit is kept


async def test_a_miss_goes_on_to_the_llm_workers_with_what_its_lookup_learnt_and_its_reply_route() -> None:
    learnt = LookupContext(status="MISS", exact_key="key-1", best_similarity=0.6, refusals=["low_probability"])
    s = setup(Miss(learnt))
    await s.handlers.on_lookup(message(completion_request("r1")))

    [sent] = s.exchange.sent
    assert sent.routing_key == TOPOLOGY.llm_request
    assert (sent.correlation_id, sent.reply_to) == ("r1", "gateway-replies")  # the answer goes to the gateway
    forwarded = CompletionRequest.model_validate(sent.body)
    assert forwarded.lookup == learnt and forwarded.body == BODY
    assert sent.expiration is not None and 0 < int(sent.expiration) <= 30_000  # dropped once nobody waits
    assert s.lookup.calls[0][1][1] == ReplyRoute("gateway-replies", "r1")
    assert s.usage.events == []  # the LLM worker accounts for a miss


async def test_a_request_noted_as_waiting_on_a_flight_gets_no_reply_yet() -> None:
    s = setup(Following("key-1"))
    await s.handlers.on_lookup(message(completion_request("r1")))
    assert s.exchange.sent == [] and s.usage.events == [] and s.hits.recorded == []


async def test_the_waiters_of_a_flight_that_stored_nothing_go_upstream_each_on_its_own() -> None:
    s = setup()
    bypassed = LookupContext(status="BYPASS", bypass_reason="temperature")
    fresh = completion_request("w1", lookup=bypassed)
    waiters = [
        Waiter(request=fresh, reply_to="gateway-a", correlation_id="w1"),
        Waiter(request=completion_request("gone", deadline_in=-1), reply_to="gateway-b", correlation_id="gone"),
    ]
    released = counted("llmcache_cache_coalesced_total", outcome="released")
    bypasses = counted("llmcache_cache_lookups_total", result="bypass", reason="temperature")

    await s.handlers.release_waiters(waiters)
    [sent] = s.exchange.sent  # nobody waits for the expired one any more
    assert (sent.routing_key, sent.correlation_id, sent.reply_to) == (TOPOLOGY.llm_request, "w1", "gateway-a")
    assert CompletionRequest.model_validate(sent.body).lookup == bypassed
    assert counted("llmcache_cache_lookups_total", result="bypass", reason="temperature") == bypasses + 1
    assert counted("llmcache_cache_coalesced_total", outcome="released") == released + 2


async def test_a_waiter_that_cannot_be_answered_or_sent_makes_its_event_wait() -> None:
    s = setup()
    s.exchange.fail = True
    waiter = Waiter(request=completion_request("w1"), reply_to="gateway-a", correlation_id="w1")
    with pytest.raises(Retryable):
        await s.handlers.answer_waiters(stored_answer(), [waiter])
    with pytest.raises(Retryable):
        await s.handlers.release_waiters([waiter])


async def test_a_waiter_of_a_dead_leader_goes_back_through_the_lookup_as_new() -> None:
    s = setup()
    led = completion_request("w1", lookup=LookupContext(status="MISS", exact_key="key-1", flight_leader=True))
    await s.handlers.resend_waiter(Waiter(request=led, reply_to="gateway-a", correlation_id="corr-w1"))
    [sent] = s.exchange.sent
    assert (sent.routing_key, sent.correlation_id, sent.reply_to) == (TOPOLOGY.cache_lookup, "corr-w1", "gateway-a")
    resent = CompletionRequest.model_validate(sent.body)
    assert resent.request_id == "w1" and resent.lookup is None  # it finds the answer, or takes the lead


async def test_a_lease_renewal_is_applied_and_one_redis_refuses_is_dropped_and_counted() -> None:
    renewal = FlightRenewal(exact_key="key-1", flight_id="leader", lease_seconds=6)
    body = SimpleNamespace(body=renewal.model_dump_json().encode())
    s = setup()
    await s.handlers.on_flight_renewal(body)  # type: ignore[arg-type]
    assert s.exact.calls == [("renew_flight", ("key-1", "leader", 6.0))]

    failing = setup(exact_fails=True)
    before = counted("llmcache_cache_dependency_failures_total", dependency="redis", operation="single_flight")
    await failing.handlers.on_flight_renewal(body)  # type: ignore[arg-type]  # not retried: the next one comes
    after = counted("llmcache_cache_dependency_failures_total", dependency="redis", operation="single_flight")
    assert after == before + 1


async def test_store_events_go_to_the_storer_the_embeddings_cache_or_the_flights_end() -> None:
    s = setup()
    generated = CompletionGenerated(
        event_id="e1", tenant="acme", namespace="default", model="m", exact_key="k", completion={}, created_at=1.0
    )
    vectors = EmbeddingsGenerated(
        event_id="e2",
        tenant="acme",
        namespace="default",
        model="m",
        items=[GeneratedEmbedding(key="v", embedding=[0.1])],
        created_at=1.0,
    )
    ended = FlightEnded(tenant="acme", exact_key="k", reason="upstream_error", flight_id="leader")
    for event in (generated, vectors, ended):
        await s.handlers.on_store_event(SimpleNamespace(body=event.model_dump_json().encode()))  # type: ignore[arg-type]

    assert [(name, args[0]) for name, args in s.storer.calls] == [
        ("store", generated),
        ("enforce_cap", "acme"),  # vectors count against the tenant's cap too
        ("end_flight", ended),
    ]
    assert s.storer.calls[0][1][1] == s.handlers.answer_waiters  # the stored answer answers its waiters
    assert s.storer.calls[2][1][1] == s.handlers.release_waiters
    assert s.embeddings.calls == [("store", (vectors,))]


def embeddings_request(name: str = "r1") -> EmbeddingsRequest:
    now = time.time()
    body = {"model": "text-embedding-3-small", "input": ["a", "b"]}
    return EmbeddingsRequest(request_id=name, tenant="acme", received_at=now, deadline=now + 30, body=body)


async def test_a_whole_embeddings_hit_is_answered_and_counted_as_saved() -> None:
    response = {"object": "list", "data": [{"index": 0, "embedding": [0.1]}, {"index": 1, "embedding": [0.2]}]}
    s = setup(embeddings=EmbeddingsHit(response=response, keys=["ka", "kb"], tokens_saved=4))
    await s.handlers.on_lookup(message(embeddings_request("r1")))
    [sent] = s.exchange.sent
    reply = CompletionReply.model_validate(sent.body)
    assert (sent.routing_key, sent.correlation_id) == ("gateway-replies", "r1")
    assert (reply.cache.status, reply.cache.inputs_cached, reply.cache.inputs) == ("HIT", 2, 2)
    assert reply.completion == response
    assert s.hits.recorded == [("acme", "ka"), ("acme", "kb")]
    [event] = s.usage.events
    assert (event.event_id, event.result, event.tokens_saved) == ("req-r1", "hit_exact", 4)


async def test_a_partly_cached_embeddings_request_sends_the_rest_on_and_the_cached_vectors_to_the_gateway() -> None:
    rest = embeddings_request("r1").model_copy(update={"body": {"model": "text-embedding-3-small", "input": ["b"]}})
    cached = [CachedEmbedding(index=0, embedding=[0.1], tokens=2)]
    s = setup(embeddings=EmbeddingsMiss(forward=rest, cached=cached))
    await s.handlers.on_lookup(message(embeddings_request("r1")))
    forwarded, to_gateway = s.exchange.sent
    assert forwarded.routing_key == TOPOLOGY.llm_request and forwarded.body["body"]["input"] == ["b"]
    assert (to_gateway.routing_key, to_gateway.correlation_id) == ("gateway-replies", "r1")
    assert EmbeddingsCached.model_validate(to_gateway.body).cached == cached
    assert s.usage.events == []
