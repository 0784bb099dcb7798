"""The flight sweeper: the waiters of a lapsed flight are resent, expired ones dropped, and those it could not
resend (the broker down) noted again for the next sweep."""

from __future__ import annotations

import time

import pytest

from services.cache_worker.flights import FlightSweeper, Waiter, read_waiters
from shared.contracts import CompletionRequest


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
