"""PostgreSQL access shared by the cache worker and the stats consumer: a pool with pgvector types."""

from __future__ import annotations

import logging

from pgvector.psycopg import register_vector_async
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from shared.settings import DatabaseSettings

log = logging.getLogger(__name__)


async def _configure(conn: AsyncConnection) -> None:
    await register_vector_async(conn)


async def open_service_pool(settings: DatabaseSettings, service: str, *, vector: bool = True) -> AsyncConnectionPool:
    """The pool a service's settings describe (DATABASE_URL, DATABASE_POOL_MIN/MAX), named after it."""
    return await open_pool(
        settings.database_url.get_secret_value(),
        min_size=settings.database_pool_min,
        max_size=settings.database_pool_max,
        name=service,
        vector=vector,
    )


def index_if_missing(name: str, ddl: str) -> str:
    """Run `CREATE INDEX` only when the index is missing: even with IF NOT EXISTS it takes its lock on
    the table first, so a restart would queue behind any open write, and every write behind it."""
    return f"DO $$ BEGIN IF to_regclass('{name}') IS NULL THEN {ddl}; END IF; END $$"


async def ensure_extension(url: str) -> None:
    """Create the pgvector extension if it is missing (needs the right to; fails loudly if it can't)."""
    async with await AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS vector")


async def open_pool(url: str, *, min_size: int, max_size: int, name: str, vector: bool = True) -> AsyncConnectionPool:
    """Open a connection pool (waits for the database to come up, up to 60s)."""
    if vector:
        await ensure_extension(url)
    pool = AsyncConnectionPool(
        url,
        min_size=min_size,
        max_size=max_size,
        kwargs={"autocommit": True, "application_name": name},
        configure=_configure if vector else None,
        open=False,
    )
    await pool.open(wait=True, timeout=60)
    return pool


async def ping(pool: AsyncConnectionPool) -> bool:
    """True when a connection can run a query."""
    try:
        async with pool.connection(timeout=2) as conn:
            await conn.execute("SELECT 1")
        return True
    except Exception as exc:
        log.warning("postgres ping failed: %s", exc)
        return False
