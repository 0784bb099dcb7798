"""One batcher for every "many callers, one call" in the system: concurrent callers' items gathered into
batches, one batch run at a time, each caller awaiting its own item's result.

Used by the embedder (texts of concurrent lookups, one model call), the cache worker (usage events of
hits, one confirmed message) and the stats consumer (usage events, one INSERT). The policy is the same
for all three: nothing waits on purpose unless `linger` says so; items that arrive while a batch runs
gather into the next one, up to `max_size`, so under load batches fill up by themselves. A batch that
fails fails every item in it with the same error. Knows nothing of the broker or of what a batch does.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")

# Runs one batch and returns one result per item, in order.
RunBatch = Callable[[list[ItemT]], Awaitable[list[ResultT]]]


class BatcherClosed(RuntimeError):
    """The batcher was closed before this item's batch ran (or `submit` came after `close`)."""


@dataclass
class _Waiting(Generic[ItemT, ResultT]):
    """One item waiting for a batch; every caller that submitted it (same key) awaits the same future."""

    item: ItemT
    future: asyncio.Future[ResultT]
    arrived: float = field(default_factory=time.monotonic)


class Batcher(Generic[ItemT, ResultT]):
    """Gathers submitted items into batches for `run`, one batch in flight at a time.

    `linger`: after the first item of a batch arrives, how long to wait for more before running it
    (0: run at once whatever is there). `key`: items with equal keys waiting together are run once
    (the embedder's duplicate texts). `observe_wait`: told each item's time in the queue.
    """

    def __init__(
        self,
        run: RunBatch[ItemT, ResultT],
        *,
        name: str,
        max_size: int,
        linger: float = 0.0,
        key: Callable[[ItemT], Hashable] | None = None,
        observe_wait: Callable[[float], None] | None = None,
    ) -> None:
        if max_size < 1:
            raise ValueError("max_size must be at least 1")
        if linger < 0:
            raise ValueError("linger must not be negative")
        self._run = run
        self.name = name
        self.max_size = max_size
        self.linger = linger
        self._key = key
        self._observe_wait = observe_wait
        self._serial = itertools.count()  # the key of items that have none: never shared
        # Insertion-ordered: the first entry is the oldest waiting item.
        self._waiting: dict[Hashable, _Waiting[ItemT, ResultT]] = {}
        self._running: list[_Waiting[ItemT, ResultT]] = []  # the batch in flight
        self._arrived = asyncio.Event()
        self._dispatcher: asyncio.Task[None] | None = None
        self._closed = False

    async def submit(self, item: ItemT) -> ResultT:
        """Return `item`'s result once its batch has run; raise what running the batch raised."""
        [result] = await self.submit_many([item])
        return result

    async def submit_many(self, items: Sequence[ItemT]) -> list[ResultT]:
        """The results of `items`, in order, from whatever batches they fall into."""
        if self._closed:
            raise BatcherClosed(f"the {self.name} batcher is closed")
        if not items:
            return []
        self._ensure_dispatcher()
        futures = [self._enqueue(item) for item in items]
        # Not gather(): a caller that is cancelled must not cancel the futures other callers share.
        await asyncio.wait(futures)
        for future in futures:
            error = future.exception()
            if error is not None:
                raise error
        return [future.result() for future in futures]

    async def close(self, timeout: float = 5.0) -> None:
        """Refuse new items, run what waits at once (no lingering) and let the batch in flight finish, within
        `timeout`; then stop. What is left then gets BatcherClosed."""
        self._closed = True
        self._arrived.set()  # a lingering dispatcher runs what it has now
        if self._dispatcher is not None:
            pending = [entry.future for entry in [*self._running, *self._waiting.values()]]
            if pending:
                await asyncio.wait(pending, timeout=timeout)
            self._dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._dispatcher
            self._dispatcher = None
        waiting = list(self._waiting.values())
        self._waiting.clear()
        _settle(waiting, BatcherClosed(f"the {self.name} batcher is closed"))

    def _enqueue(self, item: ItemT) -> asyncio.Future[ResultT]:
        key = self._key(item) if self._key is not None else next(self._serial)
        entry = self._waiting.get(key)
        if entry is None:
            entry = _Waiting(item, asyncio.get_running_loop().create_future())
            self._waiting[key] = entry
            self._arrived.set()
        return entry.future

    def _ensure_dispatcher(self) -> None:
        if self._dispatcher is None or self._dispatcher.done():
            # In a context of its own: a task inherits its creator's (a request's trace, say), and every
            # batch after the first would run in the first caller's.
            self._dispatcher = asyncio.get_running_loop().create_task(
                self._dispatch(), name=f"{self.name}-batcher", context=contextvars.Context()
            )

    async def _dispatch(self) -> None:
        """Forever: wait for an item, linger for more if asked, run up to `max_size` of them as one batch."""
        while True:
            while not self._waiting:
                self._arrived.clear()
                await self._arrived.wait()
            if self.linger > 0 and len(self._waiting) < self.max_size:
                await self._gather_for(self.linger)
            self._running = self._take()
            try:
                await self._run_batch(self._running)
            finally:
                self._running = []

    async def _gather_for(self, seconds: float) -> None:
        """Wait until `seconds` have passed or a whole batch is waiting."""
        deadline = asyncio.get_running_loop().time() + seconds
        while len(self._waiting) < self.max_size and not self._closed:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)

    def _take(self) -> list[_Waiting[ItemT, ResultT]]:
        keys = list(itertools.islice(self._waiting, self.max_size))
        return [self._waiting.pop(key) for key in keys]

    async def _run_batch(self, batch: list[_Waiting[ItemT, ResultT]]) -> None:
        if self._observe_wait is not None:
            now = time.monotonic()
            for entry in batch:
                self._observe_wait(now - entry.arrived)
        try:
            results = await self._run([entry.item for entry in batch])
            if len(results) != len(batch):
                raise ValueError(f"a batch of {len(batch)} returned {len(results)} results")
        except asyncio.CancelledError:
            _settle(batch, BatcherClosed(f"the {self.name} batcher was closed while running a batch"))
            raise
        except Exception as exc:
            log.warning("a %s batch of %d failed: %r", self.name, len(batch), exc)
            _settle(batch, exc)
        else:
            for entry, result in zip(batch, results, strict=True):
                if not entry.future.done():
                    entry.future.set_result(result)


def _settle(entries: Sequence[_Waiting[ItemT, ResultT]], error: BaseException) -> None:
    for entry in entries:
        if not entry.future.done():
            entry.future.set_exception(error)
            # Retrieved: a caller cancelled meanwhile must not leave "exception was never retrieved" in the
            # logs; the callers still waiting see it anyway.
            entry.future.exception()
