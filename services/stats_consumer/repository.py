"""The usage log in PostgreSQL: its schema and batched idempotent inserts (the reads are in queries.py).

Knows nothing of the broker. Every event carries a unique `event_id`, so inserting one twice (a
redelivery after a crash between commit and ack) leaves one row: the stats never count it twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from psycopg_pool import AsyncConnectionPool

from shared.contracts.usage_events import UsageEvent
from shared.db import index_if_missing
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

# Each step is idempotent and runs on every start, so a table created by an earlier version
# upgrades in place. Existing rows keep NULL in the new columns: nobody knows their key or namespace.
MIGRATIONS = (
    "ALTER TABLE usage_events ADD COLUMN IF NOT EXISTS key_id text",
    "ALTER TABLE usage_events ADD COLUMN IF NOT EXISTS namespace text",
    # Keyset pagination orders by (created_at, event_id), newest first: a backward scan of these
    # serves it with the tenant fixed (tenant callers) or across tenants (admin callers). They
    # also serve every time-window aggregate in queries.py.
    "CREATE INDEX IF NOT EXISTS usage_events_tenant_created_event ON usage_events (tenant, created_at, event_id)",
    "CREATE INDEX IF NOT EXISTS usage_events_created_event ON usage_events (created_at, event_id)",
    # Superseded by usage_events_tenant_created_event, which has the same leading columns.
    "DROP INDEX IF EXISTS usage_events_tenant_created_at",
    # The entry behind each answer, a semantic match's similarity, refused candidates' reasons.
    "ALTER TABLE usage_events ADD COLUMN IF NOT EXISTS cache_key text",
    "ALTER TABLE usage_events ADD COLUMN IF NOT EXISTS similarity double precision",
    "ALTER TABLE usage_events ADD COLUMN IF NOT EXISTS refusals text[]",
    # The Requests page's `?request_id=` and an entry's requests (`?cache_key=`): a few index rows instead
    # of the tenant's whole log (bench/usage_filters.py). Created only when missing: a restart of a
    # replica must not queue behind open writes for the table's lock (shared.db.index_if_missing).
    index_if_missing(
        "usage_events_tenant_request",
        "CREATE INDEX IF NOT EXISTS usage_events_tenant_request ON usage_events (tenant, request_id)",
    ),
    index_if_missing(
        "usage_events_tenant_entry",
        "CREATE INDEX IF NOT EXISTS usage_events_tenant_entry ON usage_events (tenant, cache_key, created_at DESC)",
    ),
)

INSERT_EVENT = """
INSERT INTO usage_events (
    event_id, request_id, tenant, key_id, namespace, model, result, reason, prompt_tokens,
    completion_tokens, cost_usd, tokens_saved, cost_saved_usd, latency_ms, created_at,
    cache_key, similarity, refusals
) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (event_id) DO NOTHING
"""

INT4_MIN, INT4_MAX = -(2**31), 2**31 - 1
TEXT_FIELDS = ("event_id", "request_id", "tenant", "key_id", "namespace", "model", "result", "reason", "cache_key")
INT_FIELDS = ("prompt_tokens", "completion_tokens", "tokens_saved")


class UnstorableEvent(Unprocessable, ValueError):
    """A well-formed event PostgreSQL would refuse; rejected alone so it can't fail a whole batch."""


async def ensure_schema(pool: AsyncConnectionPool) -> None:
    """Create or upgrade the usage table and its indexes (safe with several replicas starting at once)."""
    async with pool.connection() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (SCHEMA_LOCK,))
        await conn.execute(CREATE_TABLE)
        for statement in MIGRATIONS:
            await conn.execute(statement)


def usage_row(event: UsageEvent) -> tuple[Any, ...]:
    """The event as an INSERT_EVENT row; raises UnstorableEvent for values the table can't hold."""
    for name in TEXT_FIELDS:
        value = getattr(event, name)
        if value is not None and "\x00" in value:
            raise UnstorableEvent(f"usage event {name} contains a NUL character")
    if any("\x00" in reason for reason in event.refusals):
        raise UnstorableEvent("usage event refusals contain a NUL character")
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
        event.key_id,
        event.namespace,
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
        event.cache_key,
        event.similarity,
        event.refusals or None,
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
