"""Requests waiting on an identical one in flight, as the exact store keeps them, and the sweeper that hands
the waiters of a dead leader back to the lookup. Knows nothing of the broker: sending is a callback.

A waiter is a request and where its reply goes; it holds no worker while it waits. Its answer comes
from the leader's stored answer (the storer), or it is sent upstream when the leader stored nothing,
or, when the leader stopped renewing its lease, through the lookup again, where one takes the lead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pydantic import BaseModel

from services.cache_worker.exact_store import ExactStore
from services.cache_worker.metrics import COALESCED, DEGRADED
from shared.contracts.completions import CompletionRequest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReplyRoute:
    """Where a request's replies go: the gateway's reply queue and the request's correlation id."""

    reply_to: str
    correlation_id: str


class Waiter(BaseModel):
    """A request waiting on a flight, as noted in Redis: the request (with what its lookup learnt) and its route."""

    request: CompletionRequest
    reply_to: str
    correlation_id: str

    @property
    def route(self) -> ReplyRoute:
        return ReplyRoute(self.reply_to, self.correlation_id)

    def expired(self) -> bool:
        """Nobody waits for its answer any more (its gateway gave up)."""
        return time.time() > self.request.deadline


def read_waiters(raw: list[bytes]) -> list[Waiter]:
    """The waiters noted on a list; one that can't be read is dropped (logged), not the others."""
    waiters = []
    for item in raw:
        try:
            waiters.append(Waiter.model_validate_json(item))
        except ValueError as exc:
            log.warning("dropping an unreadable flight waiter: %s", str(exc).splitlines()[0])
    return waiters


# Sends a waiter's request back to the lookup (to take the lead or find the answer).
Resend = Callable[[Waiter], Awaitable[None]]


class FlightSweeper:
    """Every `interval_seconds`, takes over the waiters of flights whose lease lapsed and resends them."""

    def __init__(self, exact: ExactStore, resend: Resend, interval_seconds: float) -> None:
        self._exact = exact
        self._resend = resend
        self._interval = interval_seconds

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.sweep()
            except Exception as exc:  # Redis or the broker down: the next sweep tries again
                log.warning("sweeping lapsed single flights failed: %s", exc)
                DEGRADED.labels("redis", "single_flight").inc()

    async def sweep(self) -> int:
        """Resend the waiters of every lapsed flight; returns how many were resent.

        Redis no longer holds the waiters taken over: when the broker fails, those not resent yet (of this
        flight and of every other one taken over) are noted again for the next sweep, never dropped."""
        taken = [
            (key, [waiter for waiter in read_waiters(raw) if not waiter.expired()])
            for key, raw in await self._exact.lapsed_flights()
        ]
        resent = 0
        try:
            for index, (key, waiters) in enumerate(taken):
                log.info("single flight %s… lapsed (its leader died): %d waiters take over", key[:12], len(waiters))
                for done, waiter in enumerate(waiters):
                    try:
                        await self._resend(waiter)
                    except Exception:
                        await self._put_back([(key, waiters[done:]), *taken[index + 1 :]])
                        raise
                    resent += 1
        finally:
            if resent:
                COALESCED.labels("taken_over").inc(resent)
        return resent

    async def _put_back(self, flights: list[tuple[str, list[Waiter]]]) -> None:
        """Note taken-over waiters again (their resending failed): the next sweep takes them over again."""
        for key, waiters in flights:
            if not waiters:
                continue
            longest = max(w.request.deadline for w in waiters) - time.time()
            try:
                await self._exact.put_back_waiters(key, [w.model_dump_json().encode() for w in waiters], longest)
            except Exception as exc:  # Redis down too: nothing left to keep them in
                log.warning(
                    "%d waiters of single flight %s… lost: noting them again failed: %s", len(waiters), key[:12], exc
                )
