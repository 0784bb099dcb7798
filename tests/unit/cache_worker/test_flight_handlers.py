"""The cache worker's side of a single flight: a leader's request is forwarded confirmed, and only then does its
lease last while it is queued; the requests that waited on a stored answer are answered together, not one
confirmed usage event after another."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from services.cache_worker.entries import CachedAnswer
from services.cache_worker.flights import Waiter
from services.cache_worker.handlers import CacheHandlers
from services.cache_worker.lookup import Miss
from shared.contracts.completions import CompletionRequest, LookupContext
from shared.contracts.usage_events import UsageEvent
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


class ConfirmingExchange:
    """The events channel's exchange (publisher confirms): records, or refuses as a broker's nack would."""

    def __init__(self, refuse: bool = False) -> None:
        self.refuse = refuse
        self.published: list[tuple[str, bytes]] = []

    async def publish(self, message: Any, routing_key: str, **_: Any) -> None:
        if self.refuse:
            raise ConnectionError("nacked")
        self.published.append((routing_key, message.body))


class LeadingLookup:
    def __init__(self) -> None:
        self.queued: list[str] = []

    async def run(self, request: CompletionRequest, route: Any) -> Miss:
        return Miss(LookupContext(status="MISS", exact_key="k", flight_leader=True, flight_lease_seconds=5))

    async def leader_queued(self, request: CompletionRequest) -> None:
        self.queued.append(request.request_id)


def lookup_message(name: str) -> Any:
    request = waiter(name).request
    return SimpleNamespace(body=request.model_dump_json().encode(), reply_to="gateway", correlation_id=name)


async def test_a_leader_is_forwarded_confirmed_and_only_then_its_lease_lasts_while_queued() -> None:
    fast, confirmed, lookup = Exchange(), ConfirmingExchange(), LeadingLookup()
    worker = SimpleNamespace(fast_channel=ReplyChannel(fast), exchange=confirmed, topology=TOPOLOGY)
    handlers = CacheHandlers(worker, lookup, None, None, Hits(), SlowUsage(1), PriceBook(), None, None)  # type: ignore[arg-type]
    await handlers.on_lookup(lookup_message("leader"))
    assert [key for key, _ in confirmed.published] == [TOPOLOGY.llm_request] and fast.published == []
    assert lookup.queued == ["leader"]

    worker.exchange = ConfirmingExchange(refuse=True)
    with pytest.raises(ConnectionError):  # the lookup is retried; meanwhile the lease stays the short one
        await handlers.on_lookup(lookup_message("refused"))
    assert lookup.queued == ["leader"]
