"""Tenants and API keys in PostgreSQL: the schema and every query, parameterized.

Knows nothing of the broker. Keys are stored by hash (`key_hash`, hex SHA-256) with a short
display prefix; the plain key is never written anywhere.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from shared.contracts.tenants import KeyInfo, KeySummary, TenantInfo

# Serialises schema creation across replicas starting together (concurrent CREATE TABLE IF NOT
# EXISTS can still collide on the catalog).
SCHEMA_LOCK = "llmcache.tenants.schema"

# How stale `last_used_at` may get: resolving a key writes it at most once a minute.
LAST_USED_RESOLUTION_SECONDS = 60

CREATE_TENANTS = """
CREATE TABLE IF NOT EXISTS tenants (
    id text PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now()
)
"""

# The CHECK on key_hash makes storing a plain key by mistake fail loudly.
CREATE_API_KEYS = """
CREATE TABLE IF NOT EXISTS api_keys (
    id uuid PRIMARY KEY,
    tenant_id text NOT NULL REFERENCES tenants (id),
    name text NOT NULL,
    key_hash text NOT NULL UNIQUE CHECK (key_hash ~ '^[0-9a-f]{64}$'),
    prefix text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz,
    last_used_at timestamptz,
    rpm_limit integer CHECK (rpm_limit > 0),
    tokens_per_day integer CHECK (tokens_per_day > 0),
    allowed_models text[]
)
"""

CREATE_API_KEYS_INDEX = "CREATE INDEX IF NOT EXISTS api_keys_tenant_created ON api_keys (tenant_id, created_at)"

KEY_COLUMNS = (
    "id, tenant_id, name, prefix, created_at, revoked_at, last_used_at, rpm_limit, tokens_per_day, allowed_models"
)

INSERT_TENANT = "INSERT INTO tenants (id) VALUES (%s) ON CONFLICT (id) DO NOTHING RETURNING id, created_at"
SELECT_TENANTS = "SELECT id, created_at FROM tenants ORDER BY created_at, id"
SELECT_TENANT_EXISTS = "SELECT 1 FROM tenants WHERE id = %s"

INSERT_KEY = f"""
INSERT INTO api_keys (id, tenant_id, name, key_hash, prefix, rpm_limit, tokens_per_day, allowed_models)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
RETURNING {KEY_COLUMNS}
"""
INSERT_KEY_IF_NEW = f"""
INSERT INTO api_keys (id, tenant_id, name, key_hash, prefix)
VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (key_hash) DO NOTHING
RETURNING {KEY_COLUMNS}
"""
SELECT_KEY_BY_HASH = f"SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = %s"
# Two fixed statements rather than `tenant_id = %s OR %s IS NULL`, so the per-tenant one uses the index.
SELECT_KEYS = f"SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at DESC, id"
SELECT_TENANT_KEYS = f"SELECT {KEY_COLUMNS} FROM api_keys WHERE tenant_id = %s ORDER BY created_at DESC, id"
REVOKE_KEY = f"""
UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())
WHERE id = %s
RETURNING {KEY_COLUMNS}, key_hash
"""
RESOLVE_KEY = """
SELECT id, tenant_id, rpm_limit, tokens_per_day, allowed_models,
       last_used_at IS NULL OR last_used_at < now() - make_interval(secs => %s)
FROM api_keys
WHERE key_hash = %s AND revoked_at IS NULL
"""
TOUCH_KEY = "UPDATE api_keys SET last_used_at = now() WHERE id = %s"


async def ensure_schema(pool: AsyncConnectionPool) -> None:
    """Create the tables and index if missing (safe with several replicas starting at once)."""
    async with pool.connection() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (SCHEMA_LOCK,))
        await conn.execute(CREATE_TENANTS)
        await conn.execute(CREATE_API_KEYS)
        await conn.execute(CREATE_API_KEYS_INDEX)


async def insert_tenant(pool: AsyncConnectionPool, name: str) -> TenantInfo | None:
    """Create a tenant; None when one of that name exists already."""
    async with pool.connection() as conn:
        cur = await conn.execute(INSERT_TENANT, (name,))
        row = await cur.fetchone()
    return TenantInfo(name=row[0], created_at=row[1].timestamp()) if row else None


async def select_tenants(pool: AsyncConnectionPool) -> list[TenantInfo]:
    """Every tenant, oldest first."""
    async with pool.connection() as conn:
        cur = await conn.execute(SELECT_TENANTS)
        rows = await cur.fetchall()
    return [TenantInfo(name=name, created_at=created_at.timestamp()) for name, created_at in rows]


async def tenant_exists(pool: AsyncConnectionPool, name: str) -> bool:
    """Whether a tenant of that name exists."""
    async with pool.connection() as conn:
        cur = await conn.execute(SELECT_TENANT_EXISTS, (name,))
        return await cur.fetchone() is not None


async def insert_key(
    pool: AsyncConnectionPool,
    *,
    tenant: str,
    name: str,
    key_hash: str,
    prefix: str,
    rpm_limit: int | None,
    tokens_per_day: int | None,
    allowed_models: list[str] | None,
) -> KeySummary | None:
    """Store a new key (by hash); None when the tenant does not exist."""
    params = (uuid.uuid4(), tenant, name, key_hash, prefix, rpm_limit, tokens_per_day, allowed_models)
    try:
        async with pool.connection() as conn:
            cur = await conn.execute(INSERT_KEY, params)
            row = await cur.fetchone()
    except psycopg.errors.ForeignKeyViolation:
        return None
    assert row is not None  # INSERT ... RETURNING without a conflict clause returns its row
    return key_summary(row)


async def ensure_key(
    pool: AsyncConnectionPool, *, tenant: str, name: str, key_hash: str, prefix: str
) -> tuple[KeySummary, bool]:
    """The key with this hash, created (with its tenant) when missing; True when it was created now."""
    async with pool.connection() as conn, conn.transaction():
        await conn.execute(INSERT_TENANT, (tenant,))
        cur = await conn.execute(INSERT_KEY_IF_NEW, (uuid.uuid4(), tenant, name, key_hash, prefix))
        row = await cur.fetchone()
        if row is not None:
            return key_summary(row), True
        cur = await conn.execute(SELECT_KEY_BY_HASH, (key_hash,))
        row = await cur.fetchone()
    assert row is not None  # the conflict was on this very hash
    return key_summary(row), False


async def select_keys(pool: AsyncConnectionPool, tenant: str | None) -> list[KeySummary]:
    """The keys of one tenant (None: all), newest first, revoked ones included."""
    async with pool.connection() as conn:
        if tenant is None:
            cur = await conn.execute(SELECT_KEYS)
        else:
            cur = await conn.execute(SELECT_TENANT_KEYS, (tenant,))
        rows = await cur.fetchall()
    return [key_summary(row) for row in rows]


async def revoke_key(pool: AsyncConnectionPool, key_id: str) -> tuple[KeySummary, str] | None:
    """Revoke a key (keeping the first revocation time); its summary and hash, or None if there is no such key."""
    async with pool.connection() as conn:
        cur = await conn.execute(REVOKE_KEY, (key_id,))
        row = await cur.fetchone()
    if row is None:
        return None
    return key_summary(row[:-1]), row[-1]


async def resolve_key(pool: AsyncConnectionPool, key_hash: str) -> KeyInfo | None:
    """Who a valid key belongs to and its limits; None for an unknown or revoked key.

    Also refreshes the key's `last_used_at`, at most once a minute.
    """
    async with pool.connection() as conn:
        cur = await conn.execute(RESOLVE_KEY, (LAST_USED_RESOLUTION_SECONDS, key_hash))
        row = await cur.fetchone()
        if row is None:
            return None
        key_id, tenant, rpm_limit, tokens_per_day, allowed_models, stale = row
        if stale:
            await conn.execute(TOUCH_KEY, (key_id,))
    return KeyInfo(
        key_id=str(key_id),
        tenant=tenant,
        rpm_limit=rpm_limit,
        tokens_per_day=tokens_per_day,
        allowed_models=allowed_models,
    )


def key_summary(row: tuple[Any, ...] | Any) -> KeySummary:
    """A KEY_COLUMNS row as a KeySummary."""
    key_id, tenant, name, prefix, created_at, revoked_at, last_used_at, rpm_limit, tokens_per_day, models = row
    return KeySummary(
        id=str(key_id),
        tenant=tenant,
        name=name,
        prefix=prefix,
        created_at=created_at.timestamp(),
        revoked_at=_epoch(revoked_at),
        last_used_at=_epoch(last_used_at),
        rpm_limit=rpm_limit,
        tokens_per_day=tokens_per_day,
        allowed_models=models,
    )


def _epoch(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None
