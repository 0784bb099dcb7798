"""The cache worker's side of a single flight: the requests that waited on a stored answer are answered
together, not one confirmed usage event after another."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from services.cache_worker.entries import CachedAnswer
from services.cache_worker.flights import Waiter
from services.cache_worker.handlers import CacheHandlers
from shared.contracts import CompletionRequest, UsageEvent
from shared.pricing import PriceBook
from shared.topology import Topology
from tests.unit.fakes import ReplyChannel

TOPOLOGY = Topology("unit-flights")


@dataclass
class Exchange:
    published: list[tuple[str, bytes]] = field(default_factory=list)

    async def publish(self, message: Any, routing_key: str, **_: Any) -> None:
        self.published.append((routing_key, message.body))


class SlowUsage:
    """Confirms a usage event only once `together` of them wait for it (a batch's confirm round trip)."""

    def __init__(self, together: int) -> None:
        self.together = together
        self.waiting: list[UsageEvent] = []
        self.all_in = asyncio.Event()

    async def publish(self, event: UsageEvent) -> None:
        self.waiting.append(event)
        if len(self.waiting) >= self.together:
            self.all_in.set()
        await self.all_in.wait()


class Hits:
    def record(self, tenant: str, key: str) -> None:
        return None


def waiter(name: str) -> Waiter:
    now = time.time()
    request = CompletionRequest(request_id=name, tenant="t", received_at=now, deadline=now + 30, body={"model": "m"})
    return Waiter(request=request, reply_to=f"gateway-{name}", correlation_id=name)


async def test_the_waiters_of_a_stored_answer_are_answered_together() -> None:
    exchange = Exchange()
    usage = SlowUsage(together=5)
    worker = SimpleNamespace(fast_channel=ReplyChannel(exchange), topology=TOPOLOGY)
    handlers = CacheHandlers(worker, None, None, None, Hits(), usage, PriceBook(), None, None)  # type: ignore[arg-type]
    answer = CachedAnswer("e", "k", "m", {"choices": [], "usage": {"total_tokens": 3}}, time.time())
    # One after another, the first waiter's usage event would wait for the other four's forever.
    await asyncio.wait_for(handlers.answer_waiters(answer, [waiter(f"w{i}") for i in range(5)]), 5)
    assert sorted(key for key, _ in exchange.published) == [f"gateway-w{i}" for i in range(5)]
    assert len(usage.waiting) == 5
