"""The semantic cache: answers with their prompt embeddings in PostgreSQL, searched with pgvector.

One table per embedding dimension (an HNSW index needs a fixed dimension), cosine distance, and
every search filtered to the request's partition and to live entries (`expires_at`).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from services.cache_worker.entries import CachedAnswer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Candidate:
    """The nearest live entry in a partition and its cosine similarity to the query."""

    answer: CachedAnswer
    similarity: float


@dataclass(frozen=True)
class NewEntry:
    """What the store event carries for the semantic table."""

    answer: CachedAnswer
    tenant: str
    namespace: str
    partition_key: str
    embedding_model: str
    prompt_text: str
    embedding: list[float]
    ttl_seconds: int


def table_name(dim: int) -> str:
    return f"cache_entries_d{int(dim)}"


class SemanticStore:
    """pgvector-backed nearest-neighbour search over stored answers."""

    def __init__(self, pool: AsyncConnectionPool, ef_search: int) -> None:
        self._pool = pool
        self._ef_search = int(ef_search)
        self._ready_tables: set[int] = set()

    async def _ensure_table(self, dim: int) -> str:
        name = table_name(dim)
        if dim in self._ready_tables:
            return name
        async with self._pool.connection() as conn, conn.transaction():
            # Replicas start together: serialize the DDL.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (name,))
            await conn.execute(
                f"""
                CREATE TABLE IF NOT EXISTS {name} (
                    id uuid PRIMARY KEY,
                    tenant text NOT NULL,
                    namespace text NOT NULL,
                    model text NOT NULL,
                    exact_key text NOT NULL UNIQUE,
                    partition_key text NOT NULL,
                    embedding_model text NOT NULL,
                    prompt_text text NOT NULL,
                    embedding vector({int(dim)}) NOT NULL,
                    completion jsonb NOT NULL,
                    upstream text,
                    created_at timestamptz NOT NULL,
                    expires_at timestamptz NOT NULL,
                    hit_count bigint NOT NULL DEFAULT 0,
                    last_hit_at timestamptz
                )"""
            )
            await conn.execute(
                f"CREATE INDEX IF NOT EXISTS {name}_embedding_hnsw ON {name} USING hnsw (embedding vector_cosine_ops)"
            )
            await conn.execute(f"CREATE INDEX IF NOT EXISTS {name}_partition ON {name} (partition_key, expires_at)")
            await conn.execute(f"CREATE INDEX IF NOT EXISTS {name}_tenant ON {name} (tenant, namespace, created_at)")
        self._ready_tables.add(dim)
        return name

    async def nearest(
        self, partition_key: str, embedding: list[float], max_age_seconds: int | None
    ) -> Candidate | None:
        """The nearest live entry in the partition (any similarity), or None if the partition is empty."""
        name = await self._ensure_table(len(embedding))
        vector = np.asarray(embedding, dtype=np.float32)
        min_created = datetime.now(UTC) - timedelta(seconds=max_age_seconds) if max_age_seconds is not None else None
        async with self._pool.connection() as conn, conn.transaction():
            # Iterative scans keep the filtered HNSW search from coming back empty in a big table.
            await conn.execute(f"SET LOCAL hnsw.ef_search = {self._ef_search}")
            await conn.execute("SET LOCAL hnsw.iterative_scan = strict_order")
            cursor = await conn.execute(
                f"""
                SELECT id, exact_key, model, completion, upstream, created_at, 1 - (embedding <=> %(v)s) AS similarity
                FROM {name}
                WHERE partition_key = %(p)s AND expires_at > now()
                  AND (%(min_created)s::timestamptz IS NULL OR created_at >= %(min_created)s::timestamptz)
                ORDER BY embedding <=> %(v)s
                LIMIT 1
                """,
                {"v": vector, "p": partition_key, "min_created": min_created},
            )
            row = await cursor.fetchone()
        if row is None:
            return None
        entry_id, key, model, completion, upstream, created_at, similarity = row
        answer = CachedAnswer(
            entry_id=str(entry_id),
            exact_key=key,
            model=model,
            completion=completion,
            created_at=created_at.timestamp(),
            upstream=upstream,
        )
        return Candidate(answer=answer, similarity=float(similarity))

    async def put(self, entry: NewEntry) -> None:
        """Insert an entry, or replace the one stored under the same exact key."""
        name = await self._ensure_table(len(entry.embedding))
        created = datetime.fromtimestamp(entry.answer.created_at, UTC)
        async with self._pool.connection() as conn:
            await conn.execute(
                f"""
                INSERT INTO {name} (id, tenant, namespace, model, exact_key, partition_key, embedding_model,
                                    prompt_text, embedding, completion, upstream, created_at, expires_at)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                ON CONFLICT (exact_key) DO UPDATE SET
                    id = EXCLUDED.id, completion = EXCLUDED.completion, embedding = EXCLUDED.embedding,
                    prompt_text = EXCLUDED.prompt_text, upstream = EXCLUDED.upstream,
                    created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at
                """,
                (
                    uuid.UUID(entry.answer.entry_id),
                    entry.tenant,
                    entry.namespace,
                    entry.answer.model,
                    entry.answer.exact_key,
                    entry.partition_key,
                    entry.embedding_model,
                    entry.prompt_text,
                    np.asarray(entry.embedding, dtype=np.float32),
                    Jsonb(entry.answer.completion),
                    entry.answer.upstream,
                    created,
                    created + timedelta(seconds=entry.ttl_seconds),
                ),
            )

    async def record_hit(self, entry_id: str, dim: int) -> None:
        """Count a hit on an entry (for browsing and LRU eviction)."""
        async with self._pool.connection() as conn:
            await conn.execute(
                f"UPDATE {table_name(dim)} SET hit_count = hit_count + 1, last_hit_at = now() WHERE id = %s",
                (uuid.UUID(entry_id),),
            )
