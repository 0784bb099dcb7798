"""Usage events of cache hits, published in batches: one confirmed message for the hits of many requests.

A hit is the cheap path, and a persistent, confirmed message per hit was a third of its broker
work. A batch goes out `linger` seconds after its first event (or when full), and the next one
gathers while it is being confirmed. The reply to the user never waits for any of this.

`publish` returns once the event's batch is confirmed: the lookup's message is acked after that,
so a worker that dies first has its lookups redelivered and their events (ids derived from the
request) sent again, never lost and never counted twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from services.cache_worker.metrics import USAGE_BATCH_SIZE
from shared.contracts import MAX_USAGE_BATCH, UsageEvent, UsageEventBatch

log = logging.getLogger(__name__)

# Publishes one message body durably; returns once the broker confirmed it.
PublishBody = Callable[[bytes], Awaitable[None]]


class UsagePublisherClosed(RuntimeError):
    """publish() after close()."""


class UsagePublisher:
    """Gathers usage events while a batch is in flight and publishes them as one UsageEventBatch."""

    def __init__(
        self, publish_body: PublishBody, *, max_batch: int = MAX_USAGE_BATCH, linger_seconds: float = 0.005
    ) -> None:
        if not 1 <= max_batch <= MAX_USAGE_BATCH:
            raise ValueError(f"max_batch must be between 1 and {MAX_USAGE_BATCH}")
        if linger_seconds < 0:
            raise ValueError("linger_seconds must not be negative")
        self._publish_body = publish_body
        self._max_batch = max_batch
        self._linger = linger_seconds
        self._waiting: list[tuple[UsageEvent, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._sender: asyncio.Task[None] | None = None
        self._closed = False

    async def publish(self, event: UsageEvent) -> None:
        """Return once the batch holding `event` is confirmed; raise what publishing it raised."""
        if self._closed:
            raise UsagePublisherClosed("the usage publisher is closed")
        if self._sender is None or self._sender.done():
            self._sender = asyncio.get_running_loop().create_task(self._send_forever(), name="usage-publisher")
        confirmed = asyncio.get_running_loop().create_future()
        self._waiting.append((event, confirmed))
        if len(self._waiting) == 1 or len(self._waiting) >= self._max_batch:
            self._wake.set()
        # shield: a caller that is cancelled must not cancel the future its batch shares with it.
        await asyncio.shield(confirmed)

    async def _send_forever(self) -> None:
        while True:
            if not self._waiting:
                self._wake.clear()
                await self._wake.wait()
            if len(self._waiting) < self._max_batch and self._linger > 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._linger)
            batch = self._waiting[: self._max_batch]
            del self._waiting[: len(batch)]
            await self._send(batch)

    async def _send(self, batch: list[tuple[UsageEvent, asyncio.Future[None]]]) -> None:
        USAGE_BATCH_SIZE.observe(len(batch))
        body = UsageEventBatch(events=[event for event, _ in batch]).model_dump_json().encode()
        try:
            await self._publish_body(body)
        except asyncio.CancelledError:
            _settle(batch, UsagePublisherClosed("the usage publisher was closed while publishing"))
            raise
        except Exception as exc:
            log.warning("publishing %d usage events failed: %s", len(batch), exc)
            _settle(batch, exc)
        else:
            _settle(batch, None)

    async def close(self) -> None:
        """Publish what waits, then stop; later publishes are refused."""
        self._closed = True
        if self._waiting:
            pending = [confirmed for _, confirmed in self._waiting]
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.gather(*pending, return_exceptions=True), 5)
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
        waiting, self._waiting = self._waiting, []
        _settle(waiting, UsagePublisherClosed("the usage publisher is closed"))


def _settle(batch: list[tuple[UsageEvent, asyncio.Future[None]]], error: BaseException | None) -> None:
    for _, confirmed in batch:
        if confirmed.done():
            continue
        if error is None:
            confirmed.set_result(None)
        else:
            confirmed.set_exception(error)
            confirmed.exception()  # retrieved: a cancelled caller must not leave "never retrieved" noise
