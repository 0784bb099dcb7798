"""Cache worker: wiring, startup and shutdown.

Consumes lookups (exact in Redis, then semantic in pgvector; hits answered here, misses passed to
the LLM worker, identical requests in flight noted as its waiters), store events (CompletionGenerated
stored in both and its waiters answered; FlightEnded sends its waiters upstream), single-flight
lease renewals and admin requests (browse, invalidate); runs the hit recorder, the expiry sweeper
and the flight sweeper (the waiters of a leader that died take over).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import redis.asyncio as redis

from services.cache_worker.admin import CacheAdmin
from services.cache_worker.embeddings import EmbeddingsCache
from services.cache_worker.entry_store import EntryStore
from services.cache_worker.exact_store import ExactStore
from services.cache_worker.feedback import ReportedPairs, ServedPairs
from services.cache_worker.flights import FlightSweeper
from services.cache_worker.handlers import CacheHandlers
from services.cache_worker.lookup import Lookup, LookupPolicy
from services.cache_worker.settings import Settings
from services.cache_worker.storing import Storer
from services.cache_worker.upkeep import HitRecorder, Sweeper
from services.cache_worker.usage import UsagePublisher
from services.cache_worker.verifier import HitVerifier, build_verifier
from shared.broker import publish_event
from shared.contracts.embedder import EmbedRequest, EmbedResult
from shared.db import open_service_pool, ping
from shared.logs import setup_logging
from shared.pricing import PriceBook
from shared.tracing import setup_tracing
from shared.worker import Worker, run

log = logging.getLogger("cache_worker")


async def main() -> None:
    settings = Settings()
    setup_logging("cache_worker", settings.log_level)
    setup_tracing("cache_worker", settings)
    worker = Worker("cache_worker", settings)
    redis_client = redis.from_url(
        settings.redis_url.get_secret_value(),
        socket_timeout=settings.redis_socket_timeout_seconds,
        socket_connect_timeout=settings.redis_socket_timeout_seconds,
    )
    pool = await open_service_pool(settings, "cache_worker")
    background: list[asyncio.Task[None]] = []
    hits: HitRecorder | None = None
    verifier: HitVerifier | None = None
    usage: UsagePublisher | None = None
    served: ServedPairs | None = None
    try:
        await worker.start()

        async def embed(texts: list[str]) -> tuple[list[list[float]], str]:
            result = await worker.rpc.call(
                worker.topology.embed_rpc, EmbedRequest(texts=texts), EmbedResult, settings.embed_timeout_seconds
            )
            return result.vectors, result.model

        exact = ExactStore(redis_client, settings.redis_prefix)
        entries = EntryStore(pool, settings.hnsw_ef_search)
        await entries.ensure_schema()
        reported = ReportedPairs(pool, redis_client, settings.redis_prefix, settings.reported_check_timeout_seconds)
        await reported.ensure_schema()
        try:
            await reported.load_into_redis()
        except Exception as exc:  # the lookups' check asks PostgreSQL until Redis has the sets
            log.warning("loading reported pairs into Redis failed: %s", exc)
        served = ServedPairs(pool, settings.feedback_window_seconds)
        policy = LookupPolicy(
            similarity_threshold=settings.prefilter,
            max_cacheable_temperature=settings.max_cacheable_temperature,
            flight_lease_seconds=settings.flight_lease_seconds,
            conversation_match=settings.conversation_match,
        )
        verifier = await asyncio.to_thread(
            build_verifier,
            settings.verifier,
            min_probability=settings.verifier_min_probability,
            model_dir=settings.verifier_model_dir,
            threads=settings.verifier_threads,
            judge_band=settings.llm_judge_band,
            judge_base_url=settings.llm_judge_base_url,
            judge_api_key=settings.llm_judge_api_key.get_secret_value(),
            judge_model=settings.llm_judge_model,
            judge_timeout_seconds=settings.llm_judge_timeout_seconds,
        )
        log.info("hit verifier: %s; conversations match %s", settings.verifier, settings.conversation_match)
        hits = HitRecorder(exact, entries)

        async def publish_usage(body: bytes) -> None:
            await publish_event(worker.exchange, worker.topology.usage_events, body)

        usage = UsagePublisher(publish_usage)
        handlers = CacheHandlers(
            worker,
            Lookup(exact, entries, embed, policy, verifier, reported),
            Storer(exact, entries, settings.cache_ttl_seconds, settings.max_entries_per_tenant),
            CacheAdmin(exact, entries, embed, served, reported),
            hits,
            usage,
            PriceBook(settings.prices_file or None),
            EmbeddingsCache(exact, settings.cache_ttl_seconds),
            exact,
            served,
        )
        flights = FlightSweeper(exact, handlers.resend_waiter, settings.flight_sweep_interval_seconds)
        background = [
            asyncio.create_task(hits.run()),
            asyncio.create_task(served.run()),
            asyncio.create_task(reported.run_reconcile(settings.reported_reconcile_seconds)),
            asyncio.create_task(Sweeper(exact, entries, settings.sweep_interval_seconds, served=served).run()),
            asyncio.create_task(flights.run()),
        ]

        async def health() -> dict[str, bool]:
            return {"redis": await exact.ping(), "postgres": await ping(pool)}

        await worker.consume(worker.topology.cache_lookup, handlers.on_lookup, prefetch=settings.lookup_prefetch)
        await worker.consume(worker.topology.cache_store, handlers.on_store_event, prefetch=settings.store_prefetch)
        await worker.consume(worker.topology.cache_flights, handlers.on_flight_renewal, prefetch=64)
        await worker.consume(worker.topology.cache_admin, handlers.on_admin, prefetch=4)
        await worker.serve_control(health)
        await worker.run_until_stopped()
    finally:
        await worker.close()  # in-flight lookups finish first, their usage events confirmed
        if usage is not None:
            await usage.close()
        for task in background:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if hits is not None:
            await hits.flush()
        if served is not None:
            await served.flush()
        if verifier is not None:
            await verifier.close()
        await pool.close()
        await redis_client.aclose()


if __name__ == "__main__":
    run(main)
