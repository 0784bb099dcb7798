"""Background upkeep of the cache: hit counts and LRU order recorded in batches, expired rows swept.

Both run off the request path: a hit is answered first, counted within a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict

from services.cache_worker.entry_store import EntryStore
from services.cache_worker.exact_store import ExactStore
from services.cache_worker.feedback import ServedPairs
from services.cache_worker.metrics import DEGRADED, SWEPT

log = logging.getLogger(__name__)


class HitRecorder:
    """Collects hits in memory and flushes them every `interval` seconds (hit counts, last hit, LRU order)."""

    def __init__(self, exact: ExactStore, entries: EntryStore, interval: float = 1.0) -> None:
        self._exact = exact
        self._entries = entries
        self._interval = interval
        self._counts: dict[str, tuple[int, float]] = {}
        self._used: defaultdict[str, dict[str, float]] = defaultdict(dict)

    def record(self, tenant: str, key: str) -> None:
        now = time.time()
        count, _ = self._counts.get(key, (0, now))
        self._counts[key] = (count + 1, now)
        self._used[tenant][key] = now

    async def flush(self) -> None:
        counts, used = self._counts, dict(self._used)
        self._counts, self._used = {}, defaultdict(dict)
        try:
            await self._exact.touch(used)
        except Exception as exc:
            log.warning("recording LRU order failed: %s", exc)
            DEGRADED.labels("redis", "record_hits").inc()
        try:
            await self._entries.record_hits(counts)
        except Exception as exc:
            log.warning("recording hit counts failed: %s", exc)
            DEGRADED.labels("postgres", "record_hits").inc()

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.flush()


class Sweeper:
    """Deletes expired entries from PostgreSQL (Redis expires its own) every `interval` seconds."""

    def __init__(
        self,
        exact: ExactStore,
        entries: EntryStore,
        interval: float,
        batch: int = 1000,
        served: ServedPairs | None = None,
    ) -> None:
        self._exact = exact
        self._entries = entries
        self._interval = interval
        self._batch = batch
        self._served = served  # semantic hits kept for feedback: forgotten after their window

    async def sweep(self) -> int:
        swept = 0
        while True:
            rows = await self._entries.sweep_expired(self._batch)
            by_tenant: defaultdict[str, list[str]] = defaultdict(list)
            for tenant, key in rows:
                by_tenant[tenant].append(key)
            for tenant, keys in by_tenant.items():
                with contextlib.suppress(Exception):
                    await self._exact.forget(tenant, keys)
            swept += len(rows)
            SWEPT.inc(len(rows))
            if len(rows) < self._batch:
                return swept

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                swept = await self.sweep()
                if swept:
                    log.info("swept %d expired entries", swept)
                if self._served is not None:
                    await self._served.sweep()
            except Exception as exc:
                log.warning("sweeping expired entries failed: %s", exc)
                DEGRADED.labels("postgres", "sweep").inc()
