"""The flight sweeper: the waiters of a lapsed flight are resent, expired ones dropped, and those it could not
resend (the broker down) noted again for the next sweep, whichever flight they waited on; none taken over from
Redis is dropped."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import pytest

from services.cache_worker.exact_store import ExactStore
from services.cache_worker.flights import FlightSweeper, Waiter, read_waiters
from shared.contracts.completions import CompletionRequest


def waiter(name: str, deadline_in: float = 30.0) -> Waiter:
    now = time.time()
    request = CompletionRequest(request_id=name, tenant="t", received_at=now, deadline=now + deadline_in, body={})
    return Waiter(request=request, reply_to="reply-queue", correlation_id=name)


class FakeExact:
    def __init__(self, lapsed: list[tuple[str, list[bytes]]]) -> None:
        self.lapsed = lapsed
        self.put_back: list[tuple[str, list[str]]] = []

    async def lapsed_flights(self) -> list[tuple[str, list[bytes]]]:
        lapsed, self.lapsed = self.lapsed, []
        return lapsed

    async def put_back_waiters(self, key: str, waiters: list[bytes], wait_seconds: float) -> None:
        assert wait_seconds > 0
        self.put_back.append((key, [w.request.request_id for w in read_waiters(waiters)]))


def raw(*waiters: Waiter) -> list[bytes]:
    return [w.model_dump_json().encode() for w in waiters]


async def test_lapsed_waiters_are_resent_and_expired_ones_dropped() -> None:
    exact = FakeExact([("k", [*raw(waiter("a"), waiter("gone", deadline_in=-1)), b"not json"])])
    sent: list[str] = []

    async def resend(w: Waiter) -> None:
        sent.append(w.request.request_id)

    assert await FlightSweeper(exact, resend, 1.0).sweep() == 1  # type: ignore[arg-type]
    assert sent == ["a"] and exact.put_back == []


async def test_waiters_not_resent_are_noted_again() -> None:
    exact = FakeExact([("k", raw(waiter("a"), waiter("b"), waiter("c")))])
    sent: list[str] = []

    async def resend(w: Waiter) -> None:
        if w.request.request_id == "b":
            raise ConnectionError("broker gone")
        sent.append(w.request.request_id)

    with pytest.raises(ConnectionError):
        await FlightSweeper(exact, resend, 1.0).sweep()  # type: ignore[arg-type]
    assert sent == ["a"] and exact.put_back == [("k", ["b", "c"])]


async def test_the_waiters_of_every_flight_taken_over_are_noted_again_when_resending_fails() -> None:
    """A sweep takes over the waiters of several lapsed flights at once (Redis no longer holds them): the
    broker failing on the first flight's must not lose the others'."""
    exact = FakeExact([("k1", raw(waiter("a"), waiter("b"))), ("k2", raw(waiter("c"))), ("k3", raw(waiter("d")))])

    async def resend(w: Waiter) -> None:
        if w.request.request_id == "b":
            raise ConnectionError("broker gone")

    with pytest.raises(ConnectionError):
        await FlightSweeper(exact, resend, 1.0).sweep()  # type: ignore[arg-type]
    assert exact.put_back == [("k1", ["b"]), ("k2", ["c"]), ("k3", ["d"])]


class ClaimsThenFails:
    """A Redis client whose claim script works for the first `works` flights, then fails (the connection dropped)."""

    def __init__(self, lapsed: list[str], works: int) -> None:
        self.lapsed = [key.encode() for key in lapsed]
        self.works = works

    def register_script(self, script: str) -> Callable[..., Awaitable[list[bytes]]]:
        async def run(keys: list[str], args: list[str]) -> list[bytes]:
            if self.works == 0:
                raise ConnectionError("Redis gone")
            self.works -= 1
            return [waiter(args[0]).model_dump_json().encode()]

        return run

    async def time(self) -> tuple[int, int]:
        return int(time.time()), 0

    async def zrangebyscore(self, *_: object, **__: object) -> list[bytes]:
        return self.lapsed


async def test_waiters_taken_over_before_redis_failed_are_handed_on() -> None:
    exact = ExactStore(ClaimsThenFails(["k1", "k2", "k3"], works=2), "p")  # type: ignore[arg-type]
    taken = await exact.lapsed_flights()
    assert [key for key, _ in taken] == ["k1", "k2"]  # claimed (gone from Redis): not dropped with the error
    with pytest.raises(ConnectionError):
        await ExactStore(ClaimsThenFails(["k1"], works=0), "p").lapsed_flights()  # type: ignore[arg-type]
