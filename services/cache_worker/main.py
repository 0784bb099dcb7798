"""Cache worker: wiring, startup and shutdown.

Consumes lookups (exact in Redis, then semantic in pgvector; hits answered here, misses passed to
the LLM worker) and CompletionGenerated events (stored in both).
"""

from __future__ import annotations

import logging

import redis.asyncio as redis

from services.cache_worker.exact_store import ExactStore
from services.cache_worker.handlers import CacheHandlers
from services.cache_worker.lookup import Lookup
from services.cache_worker.semantic_store import SemanticStore
from services.cache_worker.settings import Settings
from services.cache_worker.storing import Storer
from shared.contracts import EmbedRequest, EmbedResult
from shared.db import open_pool, ping
from shared.logs import setup_logging
from shared.pricing import PriceBook
from shared.worker import Worker, run

log = logging.getLogger("cache_worker")


async def main() -> None:
    settings = Settings()
    setup_logging("cache_worker", settings.log_level)
    worker = Worker("cache_worker", settings)
    redis_client = redis.from_url(settings.redis_url)
    pool = await open_pool(
        settings.database_url,
        min_size=settings.database_pool_min,
        max_size=settings.database_pool_max,
        name="cache_worker",
    )
    try:
        await worker.start()

        async def embed(text: str) -> tuple[list[float], str]:
            result = await worker.rpc.call(
                worker.topology.embed_rpc, EmbedRequest(texts=[text]), EmbedResult, settings.embed_timeout_seconds
            )
            return result.vectors[0], result.model

        exact = ExactStore(redis_client, settings.redis_prefix)
        semantic = SemanticStore(pool, settings.hnsw_ef_search)
        handlers = CacheHandlers(
            worker,
            Lookup(exact, semantic, embed, settings.similarity_threshold),
            Storer(exact, semantic, embed, settings.cache_ttl_seconds),
            semantic,
            PriceBook(settings.prices_file or None),
        )

        async def health() -> dict[str, bool]:
            return {"redis": await exact.ping(), "postgres": await ping(pool)}

        await worker.consume(worker.topology.cache_lookup, handlers.on_lookup, prefetch=settings.lookup_prefetch)
        await worker.consume(worker.topology.cache_store, handlers.on_generated, prefetch=settings.store_prefetch)
        await worker.serve_control(health)
        await worker.run_until_stopped()
    finally:
        await worker.close()
        await pool.close()
        await redis_client.aclose()


if __name__ == "__main__":
    run(main)
