"""The stats consumer's batches: usage events written to the log by one INSERT per batch.

The shared `Batcher` gathers them: a batch goes `max_wait` after its first event or when full, and
the next one gathers while it is written. The usage handler awaits its events and acks their message
only once their batch is committed, so an unacked message is never a lost event.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from services.stats_consumer.metrics import BATCH_SIZE, EVENTS_WRITTEN, WRITE_DURATION, WRITE_FAILURES
from shared.batching import Batcher
from shared.contracts.usage_events import UsageEvent

# Writes one batch and returns how many events it actually stored (duplicates are skipped).
WriteEvents = Callable[[list[UsageEvent]], Awaitable[int]]
UsageBatcher = Batcher[UsageEvent, None]


def usage_batcher(write: WriteEvents, *, max_size: int, max_wait: float) -> UsageBatcher:
    """A batcher whose batches are `write` calls, counted in the consumer's metrics."""
    if max_wait <= 0:
        raise ValueError("max_wait must be > 0")

    async def write_batch(events: list[UsageEvent]) -> list[None]:
        BATCH_SIZE.observe(len(events))
        started = time.perf_counter()
        try:
            written = await write(events)
        except Exception:
            WRITE_FAILURES.inc()
            raise
        finally:
            WRITE_DURATION.observe(time.perf_counter() - started)
        EVENTS_WRITTEN.inc(written)
        return [None] * len(events)

    return Batcher(write_batch, name="usage-log", max_size=max_size, linger=max_wait)
