"""Group items into batches for one write each, and tell every caller when its item is written.

Knows nothing of the broker: the usage handler awaits `add()` and acks its message only once
the batch holding the event is committed, so an unacked message is never a lost event.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from services.stats_consumer.metrics import BATCH_SIZE, EVENTS_WRITTEN, WRITE_DURATION, WRITE_FAILURES

log = logging.getLogger(__name__)

ItemT = TypeVar("ItemT")

# Writes one batch and returns how many items it actually stored (duplicates may be skipped).
BatchWriter = Callable[[list[ItemT]], Awaitable[int]]


class BatchWriteError(Exception):
    """The batch holding this item was not written; the original error is the cause."""


class BatcherClosed(RuntimeError):
    """add() after close(): nothing would ever write the item."""


class _Batch(Generic[ItemT]):
    def __init__(self) -> None:
        self.items: list[ItemT] = []
        self.written = asyncio.Event()
        self.error: BaseException | None = None
        self.timer: asyncio.TimerHandle | None = None


class EventBatcher(Generic[ItemT]):
    """Collects items and writes them `max_size` at a time, or `max_wait` seconds after a batch's first item."""

    def __init__(self, write: BatchWriter[ItemT], *, max_size: int, max_wait: float) -> None:
        if max_size < 1 or max_wait <= 0:
            raise ValueError("max_size must be >= 1 and max_wait > 0")
        self._write = write
        self.max_size = max_size
        self.max_wait = max_wait
        self._open: _Batch[ItemT] | None = None
        # References to running writes: the loop keeps only weak ones, and close() waits on them.
        self._writing: set[asyncio.Task[None]] = set()
        self._closed = False

    async def add(self, item: ItemT) -> None:
        """Add an item; return once its batch is committed, or raise BatchWriteError if the write failed."""
        if self._closed:
            raise BatcherClosed("the batcher is closed")
        batch = self._open
        if batch is None:
            batch = self._open = _Batch()
            batch.timer = asyncio.get_running_loop().call_later(self.max_wait, self._seal, batch)
        batch.items.append(item)
        if len(batch.items) >= self.max_size:
            self._seal(batch)
        # An Event, not a shared Future: a cancelled waiter must not cancel the batch for the others.
        await batch.written.wait()
        if batch.error is not None:
            raise BatchWriteError(f"writing a batch of {len(batch.items)} failed: {batch.error!r}") from batch.error

    async def close(self) -> None:
        """Write what is still buffered and wait for every write in progress; later adds are refused."""
        self._closed = True
        if self._open is not None:
            self._seal(self._open)
        if self._writing:
            await asyncio.gather(*self._writing)

    def _seal(self, batch: _Batch[ItemT]) -> None:
        # The timer may fire for a batch that already filled up and left.
        if batch is not self._open:
            return
        self._open = None
        if batch.timer is not None:
            batch.timer.cancel()
        task = asyncio.get_running_loop().create_task(self._flush(batch))
        self._writing.add(task)
        task.add_done_callback(self._writing.discard)

    async def _flush(self, batch: _Batch[ItemT]) -> None:
        started = time.perf_counter()
        BATCH_SIZE.observe(len(batch.items))
        try:
            written = await self._write(batch.items)
        except Exception as exc:
            batch.error = exc
            WRITE_FAILURES.inc()
            log.warning("writing a batch of %d failed: %r", len(batch.items), exc)
        except BaseException as exc:  # cancelled: the waiters must still wake up and fail
            batch.error = exc
            raise
        else:
            EVENTS_WRITTEN.inc(written)
        finally:
            WRITE_DURATION.observe(time.perf_counter() - started)
            batch.written.set()
