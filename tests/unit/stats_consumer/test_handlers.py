"""Stats consumer handlers with fake broker objects: decode, call the logic, reply."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import orjson
import psycopg
import pydantic
import pytest

from services.stats_consumer import handlers
from services.stats_consumer.repository import UnstorableEvent
from shared.contracts.stats import StatsQuery, StatsResult, UsagePage, UsageQuery
from shared.contracts.usage_events import UsageEvent
from tests.unit.fakes import ReplyChannel


class FakeExchange:
    def __init__(self) -> None:
        self.published: list[tuple[Any, str]] = []

    async def publish(self, message: Any, routing_key: str) -> None:
        self.published.append((message, routing_key))


class FakeBatcher:
    def __init__(self) -> None:
        self.added: list[UsageEvent] = []

    async def submit(self, event: UsageEvent) -> None:
        self.added.append(event)


def message(body: bytes) -> Any:
    return SimpleNamespace(body=body, reply_to="caller.inbox", correlation_id="c-1")


def usage_body(**overrides: object) -> bytes:
    fields = {"event_id": "e1", "request_id": "r1", "tenant": "acme", "model": "m", "result": "miss", "created_at": 1.0}
    return orjson.dumps({**fields, **overrides})


async def test_usage_handler_adds_the_event() -> None:
    batcher = FakeBatcher()
    await handlers.usage_handler(batcher)(message(usage_body()))  # type: ignore[arg-type]
    assert [event.event_id for event in batcher.added] == ["e1"]


async def test_usage_handler_refuses_bad_events_before_batching() -> None:
    batcher = FakeBatcher()
    handle = handlers.usage_handler(batcher)  # type: ignore[arg-type]
    with pytest.raises(pydantic.ValidationError):
        await handle(message(usage_body(result="maybe")))
    with pytest.raises(UnstorableEvent):
        await handle(message(usage_body(tenant="a\x00b")))
    assert batcher.added == []


async def test_usage_handler_adds_every_event_of_a_batch_and_drops_only_the_unstorable_one() -> None:
    batcher = FakeBatcher()
    events = [orjson.loads(usage_body(event_id=f"e{i}")) for i in range(3)]
    events[1]["tenant"] = "a\x00b"  # the usage log can't hold it: dropped alone, not the batch
    await handlers.usage_handler(batcher)(message(orjson.dumps({"type": "usage_batch", "events": events})))  # type: ignore[arg-type]
    assert [event.event_id for event in batcher.added] == ["e0", "e2"]


async def test_usage_handler_refuses_an_empty_batch() -> None:
    with pytest.raises(pydantic.ValidationError):
        await handlers.usage_handler(FakeBatcher())(message(b'{"type": "usage_batch", "events": []}'))  # type: ignore[arg-type]


async def test_stats_handler_replies_with_the_result(monkeypatch: pytest.MonkeyPatch) -> None:
    async def fake_query(pool: object, query: StatsQuery) -> StatsResult:
        return StatsResult(
            tenant=query.tenant, requests=4, hits=1, hits_exact=1, hits_semantic=0, misses=3, bypasses=0, errors=0,
            hit_rate=0.25, prompt_tokens=0, completion_tokens=0, tokens_saved=0, cost_usd=0, cost_saved_usd=0,
        )  # fmt: skip

    monkeypatch.setattr(handlers, "query_stats", fake_query)
    exchange = FakeExchange()
    channel = ReplyChannel(exchange)
    await handlers.stats_handler(object(), channel)(message(StatsQuery(tenant="acme").model_dump_json().encode()))  # type: ignore[arg-type]

    [(sent, routing_key)] = exchange.published
    assert routing_key == "caller.inbox"
    assert sent.correlation_id == "c-1"
    result = StatsResult.model_validate_json(sent.body)
    assert (result.tenant, result.requests, result.hit_rate) == ("acme", 4, 0.25)


async def test_stats_handler_replies_503_when_the_database_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    async def failing_query(pool: object, query: StatsQuery) -> StatsResult:
        raise psycopg.OperationalError("connection refused")

    monkeypatch.setattr(handlers, "query_stats", failing_query)
    exchange = FakeExchange()
    channel = ReplyChannel(exchange)
    await handlers.stats_handler(object(), channel)(message(StatsQuery().model_dump_json().encode()))  # type: ignore[arg-type]

    [(sent, _)] = exchange.published
    reply = orjson.loads(sent.body)
    assert reply["type"] == "error"
    assert reply["error"]["type"] == "stats_unavailable"
    assert reply["error"]["status"] == 503


def replies(exchange: FakeExchange) -> list[dict[str, Any]]:
    return [orjson.loads(sent.body) for sent, _ in exchange.published]


async def test_stats_handler_answers_usage_queries_with_a_page(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[UsageQuery] = []

    async def fake_usage(pool: object, query: UsageQuery) -> UsagePage:
        asked.append(query)
        return UsagePage(items=[], next_cursor="next")

    monkeypatch.setattr(handlers, "query_usage", fake_usage)
    exchange = FakeExchange()
    channel = ReplyChannel(exchange)
    body = UsageQuery(tenant="acme", model="m", limit=7).model_dump_json().encode()
    await handlers.stats_handler(object(), channel)(message(body))  # type: ignore[arg-type]

    assert [(q.tenant, q.model, q.limit) for q in asked] == [("acme", "m", 7)]
    [answer] = replies(exchange)
    assert UsagePage.model_validate(answer).next_cursor == "next"


async def test_a_bad_cursor_gets_a_400_reply() -> None:
    exchange = FakeExchange()
    channel = ReplyChannel(exchange)
    body = UsageQuery(tenant="acme", cursor="forged").model_dump_json().encode()
    # The cursor is refused before the pool is touched.
    await handlers.stats_handler(object(), channel)(message(body))  # type: ignore[arg-type]

    [answer] = replies(exchange)
    assert answer["type"] == "error"
    assert (answer["error"]["status"], answer["error"]["code"]) == (400, "invalid_cursor")


async def test_a_time_out_of_range_gets_a_400_reply() -> None:
    exchange = FakeExchange()
    channel = ReplyChannel(exchange)
    body = StatsQuery(tenant="acme", since=1e20).model_dump_json().encode()
    await handlers.stats_handler(object(), channel)(message(body))  # type: ignore[arg-type]

    [answer] = replies(exchange)
    assert (answer["error"]["status"], answer["error"]["type"]) == (400, "invalid_request_error")


async def test_an_unknown_query_type_is_unreadable() -> None:
    exchange = FakeExchange()
    channel = ReplyChannel(exchange)
    with pytest.raises(pydantic.ValidationError):
        await handlers.stats_handler(object(), channel)(message(b'{"type": "drop_tables"}'))  # type: ignore[arg-type]
    assert exchange.published == []
