"""The usage log in PostgreSQL: its schema, batched idempotent inserts and the stats aggregate.

Knows nothing of the broker. Every event carries a unique `event_id`, so inserting one twice (a
redelivery after a crash between commit and ack) leaves one row: the stats never count it twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from psycopg_pool import AsyncConnectionPool

from shared.contracts import StatsResult, UsageEvent
from shared.worker import Unprocessable

# One name for the lock that serialises schema creation across replicas starting together:
# concurrent CREATE TABLE IF NOT EXISTS can still collide on the catalog and fail one of them.
SCHEMA_LOCK = "llmcache.stats_consumer.schema"

CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS usage_events (
    event_id text PRIMARY KEY,
    request_id text,
    tenant text NOT NULL,
    model text NOT NULL,
    result text NOT NULL,
    reason text,
    prompt_tokens int,
    completion_tokens int,
    cost_usd double precision,
    tokens_saved int,
    cost_saved_usd double precision,
    latency_ms double precision,
    created_at timestamptz NOT NULL
)
"""

CREATE_INDEX = "CREATE INDEX IF NOT EXISTS usage_events_tenant_created_at ON usage_events (tenant, created_at)"

INSERT_EVENT = """
INSERT INTO usage_events (
    event_id, request_id, tenant, model, result, reason, prompt_tokens, completion_tokens,
    cost_usd, tokens_saved, cost_saved_usd, latency_ms, created_at
) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (event_id) DO NOTHING
"""

SELECT_STATS = """
SELECT
    count(*),
    count(*) FILTER (WHERE result = 'hit_exact'),
    count(*) FILTER (WHERE result = 'hit_semantic'),
    count(*) FILTER (WHERE result = 'miss'),
    count(*) FILTER (WHERE result = 'bypass'),
    count(*) FILTER (WHERE result = 'error'),
    coalesce(sum(prompt_tokens), 0),
    coalesce(sum(completion_tokens), 0),
    coalesce(sum(tokens_saved), 0),
    coalesce(sum(cost_usd), 0),
    coalesce(sum(cost_saved_usd), 0)
FROM usage_events
"""

# Two fixed statements rather than `tenant = %s OR %s IS NULL`, so the per-tenant query can use
# the (tenant, created_at) index.
SELECT_STATS_ALL = SELECT_STATS
SELECT_STATS_TENANT = SELECT_STATS + "WHERE tenant = %s"

INT4_MIN, INT4_MAX = -(2**31), 2**31 - 1
TEXT_FIELDS = ("event_id", "request_id", "tenant", "model", "result", "reason")
INT_FIELDS = ("prompt_tokens", "completion_tokens", "tokens_saved")


class UnstorableEvent(Unprocessable, ValueError):
    """A well-formed event PostgreSQL would refuse; rejected alone so it can't fail a whole batch."""


async def ensure_schema(pool: AsyncConnectionPool) -> None:
    """Create the usage table and its index if missing (safe with several replicas starting at once)."""
    async with pool.connection() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (SCHEMA_LOCK,))
        await conn.execute(CREATE_TABLE)
        await conn.execute(CREATE_INDEX)


def usage_row(event: UsageEvent) -> tuple[Any, ...]:
    """The event as an INSERT_EVENT row; raises UnstorableEvent for values the table can't hold."""
    for name in TEXT_FIELDS:
        value = getattr(event, name)
        if value is not None and "\x00" in value:
            raise UnstorableEvent(f"usage event {name} contains a NUL character")
    for name in INT_FIELDS:
        if not INT4_MIN <= getattr(event, name) <= INT4_MAX:
            raise UnstorableEvent(f"usage event {name} is out of range")
    try:
        created_at = datetime.fromtimestamp(event.created_at, tz=UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise UnstorableEvent(f"usage event created_at is not a valid time: {exc}") from exc
    return (
        event.event_id,
        event.request_id,
        event.tenant,
        event.model,
        event.result,
        event.reason,
        event.prompt_tokens,
        event.completion_tokens,
        event.cost_usd,
        event.tokens_saved,
        event.cost_saved_usd,
        event.latency_ms,
        created_at,
    )


async def insert_events(pool: AsyncConnectionPool, events: Sequence[UsageEvent]) -> int:
    """Insert a batch in one transaction, skipping event ids already stored; returns the rows inserted."""
    if not events:
        return 0
    rows = [usage_row(event) for event in events]
    async with pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
        await cur.executemany(INSERT_EVENT, rows)
        # psycopg sums rowcount over executemany; conflicts count 0.
        return max(cur.rowcount, 0)


async def query_stats(pool: AsyncConnectionPool, tenant: str | None) -> StatsResult:
    """Totals over the usage log for one tenant, or for all tenants when `tenant` is None."""
    async with pool.connection() as conn:
        if tenant is None:
            cur = await conn.execute(SELECT_STATS_ALL)
        else:
            cur = await conn.execute(SELECT_STATS_TENANT, (tenant,))
        row = await cur.fetchone()
    assert row is not None  # an aggregate without GROUP BY always returns one row
    requests, hits_exact, hits_semantic, misses, bypasses, errors = row[:6]
    prompt_tokens, completion_tokens, tokens_saved, cost_usd, cost_saved_usd = row[6:]
    hits = hits_exact + hits_semantic
    return StatsResult(
        tenant=tenant,
        requests=requests,
        hits=hits,
        hits_exact=hits_exact,
        hits_semantic=hits_semantic,
        misses=misses,
        bypasses=bypasses,
        errors=errors,
        hit_rate=hits / requests if requests else 0.0,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        tokens_saved=tokens_saved,
        cost_usd=float(cost_usd),
        cost_saved_usd=float(cost_saved_usd),
    )
