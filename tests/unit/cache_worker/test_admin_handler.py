"""The cache worker's admin handler with a fake message and reply channel: a value the stores can't take is
the caller's error (400), answered at once, never retried into the dead-letter queue."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import orjson

from services.cache_worker.admin import CacheAdmin
from services.cache_worker.entry_store import EntryStore
from services.cache_worker.handlers import CacheHandlers
from shared.contracts.cache_admin import ListEntries
from tests.unit.fakes import ReplyChannel


@dataclass
class FakeMessage:
    body: bytes
    reply_to: str | None = "reply.queue"
    correlation_id: str | None = "corr-1"


@dataclass
class FakeExchange:
    published: list[tuple[Any, str]] = field(default_factory=list)

    async def publish(self, message: Any, routing_key: str) -> None:
        self.published.append((message, routing_key))


class NoPool:
    """A pool the request must never reach."""

    def connection(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the database was asked")


async def test_a_time_the_store_cannot_take_is_answered_400() -> None:
    channel = ReplyChannel(FakeExchange())
    entries = EntryStore(NoPool(), ef_search=40)  # type: ignore[arg-type]
    admin = CacheAdmin(exact=None, entries=entries, embed=None)  # type: ignore[arg-type]
    handlers = CacheHandlers(  # type: ignore[arg-type]
        SimpleNamespace(fast_channel=channel), None, None, admin, None, None, None, None, None
    )

    for moment in (-1e15, 1e15):  # before year 1, after year 9999
        request = ListEntries(tenant="acme", created_after=moment)
        await handlers.on_admin(FakeMessage(request.model_dump_json().encode()))  # type: ignore[arg-type]

    replies = [orjson.loads(message.body) for message, _ in channel.default_exchange.published]
    assert [(r["error"]["status"], r["error"]["type"]) for r in replies] == [(400, "invalid_request_error")] * 2
