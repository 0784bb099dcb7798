"""Stats consumer process: wiring, startup and shutdown.

Run with `python -m services.stats_consumer.main`.
"""

from __future__ import annotations

import functools
import logging

from services.stats_consumer.batching import usage_batcher
from services.stats_consumer.handlers import stats_handler, usage_handler
from services.stats_consumer.repository import ensure_schema, insert_events
from services.stats_consumer.settings import Settings
from shared.db import open_service_pool, ping
from shared.logs import setup_logging
from shared.tracing import setup_tracing
from shared.worker import Worker, run

SERVICE = "stats_consumer"
# Stats queries and usage pages are index range scans but each holds a pool connection: a few at a time is plenty.
STATS_QUERY_PREFETCH = 8

log = logging.getLogger(__name__)


async def main() -> None:
    """Start the stats consumer and serve until SIGTERM/SIGINT, then drain and close."""
    settings = Settings()
    setup_logging(SERVICE, settings.log_level)
    setup_tracing(SERVICE, settings)
    pool = await open_service_pool(settings, SERVICE, vector=False)
    try:
        await ensure_schema(pool)
        batcher = usage_batcher(
            functools.partial(insert_events, pool),
            max_size=settings.stats_batch_max_size,
            max_wait=settings.stats_batch_max_wait_ms / 1000,
        )
        worker = Worker(SERVICE, settings)

        async def health_checks() -> dict[str, bool]:
            return {"postgres": await ping(pool)}

        try:
            await worker.start()
            await worker.consume(worker.topology.usage_events, usage_handler(batcher), prefetch=settings.stats_prefetch)
            await worker.consume(
                worker.topology.stats_query, stats_handler(pool, worker.fast_channel), prefetch=STATS_QUERY_PREFETCH
            )
            await worker.serve_control(health_checks)
            await worker.run_until_stopped()
        finally:
            # The worker drains first: in-flight events are waiting on their batch's timer, so
            # they get written and acked before the connection closes. Anything the batcher
            # still holds afterwards is written too; its messages were not acked, so they come
            # back and are skipped as duplicates.
            await worker.close()
            await batcher.close()
    finally:
        await pool.close()
        log.info("stats consumer shut down")


if __name__ == "__main__":
    run(main)
