"""Entries in PostgreSQL: the catalogue of every stored answer, and prompt vectors for semantic search.

`cache_entries` holds every entry (browsing, invalidation, hit counts, expiry); `cache_vectors_d<N>`
holds the prompt embedding of each semantically searchable entry, one table per embedding
dimension (an HNSW index needs a fixed dimension), searched by cosine distance within the
request's partition and among live entries only. Deleting an entry deletes its vector (cascade).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from services.cache_worker.entries import CachedAnswer
from shared.db import index_if_missing

log = logging.getLogger(__name__)


def add_column_ddl(table: str, column: str, column_type: str) -> str:
    """Add a column to a table from an older version, only when it is missing: ALTER TABLE takes an
    exclusive lock even when the column exists (IF NOT EXISTS), and every start would then wait for
    (and stall) the lookups and inserts behind any long query on the table."""
    return f"""
    DO $$ BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_attribute
                       WHERE attrelid = '{table}'::regclass AND attname = '{column}' AND NOT attisdropped)
        THEN ALTER TABLE {table} ADD COLUMN {column} {column_type};
        END IF;
    END $$"""


CATALOGUE_DDL = [
    """
    CREATE TABLE IF NOT EXISTS cache_entries (
        id uuid PRIMARY KEY,
        tenant text NOT NULL,
        namespace text NOT NULL,
        model text NOT NULL,
        exact_key text NOT NULL UNIQUE,
        partition_key text,
        embedding_model text,
        embedding_dim int,
        prompt_text text,
        completion jsonb NOT NULL,
        upstream text,
        created_at timestamptz NOT NULL,
        expires_at timestamptz NOT NULL,
        hit_count bigint NOT NULL DEFAULT 0,
        last_hit_at timestamptz
    )""",
    # A conversation's earlier turns, whole: as "role: text" lines (shown, and exported with wrong-hit
    # reports), and as [role, text] pairs (the aligned match compares them turn by turn).
    add_column_ddl("cache_entries", "context_text", "text"),
    add_column_ddl("cache_entries", "turns", "jsonb"),
    index_if_missing(
        "cache_entries_tenant",
        "CREATE INDEX IF NOT EXISTS cache_entries_tenant ON cache_entries (tenant, namespace, created_at DESC)",
    ),
    index_if_missing(
        "cache_entries_expiry", "CREATE INDEX IF NOT EXISTS cache_entries_expiry ON cache_entries (expires_at)"
    ),
]


@dataclass(frozen=True)
class Candidate:
    """A live entry near the query, with its prompt's cosine similarity."""

    answer: CachedAnswer
    similarity: float
    prompt_text: str | None = None  # the stored prompt, for the hit verifier
    turns: list[tuple[str, str]] | None = None  # the stored conversation's earlier turns (role, text)
    embedding: Sequence[float] | None = field(default=None, compare=False, repr=False)  # its vector, likewise


@dataclass(frozen=True)
class NewEntry:
    """An entry to store: the answer, where it belongs, and (for semantic search) its prompt vector."""

    answer: CachedAnswer
    tenant: str
    namespace: str
    ttl_seconds: int
    prompt_text: str | None = None
    partition_key: str | None = None
    embedding_model: str | None = None
    embedding: list[float] | None = None
    context_text: str | None = None
    turns: list[list[str]] | None = None


@dataclass(frozen=True)
class EntryFilter:
    """Which of a tenant's entries a listing, search or flush is about."""

    tenant: str
    namespace: str | None = None
    text: str | None = None
    model: str | None = None
    created_after: float | None = None
    created_before: float | None = None


def vector_table(dim: int) -> str:
    return f"cache_vectors_d{int(dim)}"


def vector_index_ddl(dim: int) -> str:
    """The HNSW index semantic search uses: over the prompt vectors cast to half precision.

    Half the size of a full-precision index (384 dimensions, 1M entries: 1.1 GB instead of 2 GB,
    so it stays in shared_buffers) with the same recall; candidates are re-ranked by their
    full-precision distance, so the similarities reported are exact. m = 32 and ef_construction =
    128 rather than pgvector's 16 and 64: at 1M entries recall@1 goes from 0.68 to 0.93 (ef_search
    64) for about the same lookup time, at 2.5 times the build time and 17% more index
    (bench/scale.py).
    """
    name = vector_table(dim)
    return (
        f"CREATE INDEX IF NOT EXISTS {name}_hnsw_half ON {name}"
        f" USING hnsw ((embedding::halfvec({int(dim)})) halfvec_cosine_ops) WITH (m = 32, ef_construction = 128)"
    )


def _ts(epoch: float | None) -> datetime | None:
    return datetime.fromtimestamp(epoch, UTC) if epoch is not None else None


class EntryStore:
    """The PostgreSQL side of the cache."""

    def __init__(self, pool: AsyncConnectionPool, ef_search: int, lookup_timeout_seconds: float = 1.0) -> None:
        self._pool = pool
        self._ef_search = int(ef_search)
        # A lookup waits this long at most for a connection and for its query: past it, the request
        # goes upstream without the semantic cache (fail-open) instead of hanging on a sick database.
        self._lookup_timeout = lookup_timeout_seconds
        self._vector_tables: dict[int, str] = {}  # dimension -> the expression its HNSW index orders by

    async def ensure_schema(self) -> None:
        async with self._pool.connection() as conn, conn.transaction():
            # Replicas start together: serialize the DDL.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('cache_entries'))")
            for statement in CATALOGUE_DDL:
                await conn.execute(statement)

    async def _ensure_vector_table(self, dim: int, timeout: float | None = None) -> tuple[str, str]:
        """The vector table for `dim` (created if missing) and the expression its HNSW index orders by."""
        name = vector_table(dim)
        if dim in self._vector_tables:
            return name, self._vector_tables[dim]
        async with self._pool.connection(timeout=timeout) as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (name,))
            await conn.execute(
                f"""
                CREATE TABLE IF NOT EXISTS {name} (
                    entry_id uuid PRIMARY KEY REFERENCES cache_entries (id) ON DELETE CASCADE,
                    partition_key text NOT NULL,
                    expires_at timestamptz NOT NULL,
                    created_at timestamptz NOT NULL,
                    embedding vector({int(dim)}) NOT NULL
                )"""
            )
            await conn.execute(
                index_if_missing(
                    f"{name}_partition",
                    f"CREATE INDEX IF NOT EXISTS {name}_partition ON {name} (partition_key, expires_at)",
                )
            )
            # A table from before the half-precision index keeps its full-precision one: building an
            # index over a big table here would block writes for minutes. Swap it with CREATE INDEX
            # CONCURRENTLY (vector_index_ddl) and DROP INDEX CONCURRENTLY {name}_hnsw, then restart.
            cursor = await conn.execute(
                "SELECT to_regclass(%s) IS NOT NULL AND to_regclass(%s) IS NULL", (f"{name}_hnsw", f"{name}_hnsw_half")
            )
            row = await cursor.fetchone()
            full_precision_only = bool(row and row[0])
            if full_precision_only:
                log.warning("%s has only a full-precision HNSW index: lookups use it (see vector_index_ddl)", name)
            else:
                await conn.execute(index_if_missing(f"{name}_hnsw_half", vector_index_ddl(dim)))
        order = "embedding" if full_precision_only else f"embedding::halfvec({int(dim)})"
        self._vector_tables[dim] = order
        return name, order

    # --- the request path ---------------------------------------------------------------------

    async def nearest(
        self,
        partition_key: str,
        embedding: list[float],
        max_age_seconds: int | None,
        limit: int = 1,
    ) -> list[Candidate]:
        """The nearest live entries in the partition by prompt (whatever their similarity), nearest first.

        Each comes with its stored prompt and prompt vector, for the hit verifier.
        """
        table, order = await self._ensure_vector_table(len(embedding), self._lookup_timeout)
        vector = np.asarray(embedding, dtype=np.float32)
        min_created = datetime.now(UTC) - timedelta(seconds=max_age_seconds) if max_age_seconds is not None else None
        query_vector = "%(v)s" if order == "embedding" else f"%(v)s::halfvec({len(embedding)})"
        async with self._pool.connection(timeout=self._lookup_timeout) as conn, conn.transaction():
            # Iterative scans keep a filtered HNSW search from coming back empty in a big table;
            # relaxed order, since the candidates are re-ranked below. Plans stay custom: psycopg
            # prepares repeated statements, and a generic plan, blind to the partition and the
            # limit, would hash-join every entry.
            await conn.execute(
                "SELECT set_config('hnsw.ef_search', %s, true),"
                " set_config('hnsw.iterative_scan', 'relaxed_order', true),"
                " set_config('plan_cache_mode', 'force_custom_plan', true),"
                " set_config('statement_timeout', %s, true)",
                (str(self._ef_search), f"{int(self._lookup_timeout * 1000)}ms"),
            )
            # The index finds the nearest by (half-precision) distance; the few found are re-ranked by
            # full-precision distance, and only they are joined to their entries. Binary results: the
            # stored vectors come back as raw float32, not as text to parse.
            cursor = await conn.execute(
                f"""
                WITH near AS MATERIALIZED (
                    SELECT entry_id, embedding FROM {table}
                    WHERE partition_key = %(p)s AND expires_at > now()
                      AND (%(min_created)s::timestamptz IS NULL OR created_at >= %(min_created)s::timestamptz)
                    ORDER BY {order} <=> {query_vector}
                    LIMIT %(limit)s
                )
                SELECT e.id, e.exact_key, e.model, e.completion, e.upstream, e.created_at, e.prompt_text,
                       e.turns, 1 - (n.embedding <=> %(v)s) AS similarity, n.embedding
                FROM near n JOIN cache_entries e ON e.id = n.entry_id
                ORDER BY n.embedding <=> %(v)s
                """,
                {"v": vector, "p": partition_key, "min_created": min_created, "limit": limit},
                binary=True,
            )
            rows = await cursor.fetchall()
        candidates = []
        for (
            entry_id,
            key,
            model,
            completion,
            upstream,
            created_at,
            prompt_text,
            turns,
            similarity,
            stored,
        ) in rows:
            answer = CachedAnswer(
                entry_id=str(entry_id),
                exact_key=key,
                model=model,
                completion=completion,
                created_at=created_at.timestamp(),
                upstream=upstream,
            )
            candidates.append(
                Candidate(
                    answer=answer,
                    similarity=float(similarity),
                    prompt_text=prompt_text,
                    turns=[(role, text) for role, text in turns] if turns is not None else None,
                    embedding=stored.to_numpy() if stored is not None else None,
                )
            )
        return candidates

    async def put(self, entry: NewEntry) -> None:
        """Store an entry, replacing the one stored under the same exact key (and its vector)."""
        answer = entry.answer
        created = datetime.fromtimestamp(answer.created_at, UTC)
        expires = created + timedelta(seconds=entry.ttl_seconds)
        dim = len(entry.embedding) if entry.embedding is not None else None
        table = (await self._ensure_vector_table(dim))[0] if dim is not None and entry.partition_key else None
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute("DELETE FROM cache_entries WHERE exact_key = %s", (answer.exact_key,))
            await conn.execute(
                """
                INSERT INTO cache_entries (id, tenant, namespace, model, exact_key, partition_key, embedding_model,
                                           embedding_dim, prompt_text, context_text, turns, completion,
                                           upstream,
                                           created_at, expires_at)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                """,
                (
                    uuid.UUID(answer.entry_id),
                    entry.tenant,
                    entry.namespace,
                    answer.model,
                    answer.exact_key,
                    entry.partition_key,
                    entry.embedding_model,
                    dim,
                    entry.prompt_text,
                    entry.context_text,
                    Jsonb(entry.turns) if entry.turns is not None else None,
                    Jsonb(answer.completion),
                    answer.upstream,
                    created,
                    expires,
                ),
            )
            if table is not None and entry.embedding is not None:
                await conn.execute(
                    f"INSERT INTO {table} (entry_id, partition_key, expires_at, created_at, embedding)"
                    " VALUES (%s, %s, %s, %s, %s)",
                    (
                        uuid.UUID(answer.entry_id),
                        entry.partition_key,
                        expires,
                        created,
                        np.asarray(entry.embedding, dtype=np.float32),
                    ),
                )

    async def record_hits(self, hits: dict[str, tuple[int, float]]) -> None:
        """Add hit counts and last-hit times, by exact key, in one statement."""
        if not hits:
            return
        keys = list(hits)
        async with self._pool.connection() as conn:
            await conn.execute(
                """
                UPDATE cache_entries e
                SET hit_count = e.hit_count + v.n, last_hit_at = greatest(e.last_hit_at, to_timestamp(v.t))
                FROM unnest(%s::text[], %s::int[], %s::float8[]) AS v(k, n, t)
                WHERE e.exact_key = v.k
                """,
                (keys, [hits[k][0] for k in keys], [hits[k][1] for k in keys]),
            )

    # --- lifetime -----------------------------------------------------------------------------

    async def sweep_expired(self, batch: int) -> list[tuple[str, str]]:
        """Delete up to `batch` expired entries (one sweeper at a time); returns their (tenant, key)."""
        async with self._pool.connection() as conn, conn.transaction():
            cursor = await conn.execute("SELECT pg_try_advisory_xact_lock(hashtext('cache_entries_sweep'))")
            row = await cursor.fetchone()
            if not row or not row[0]:
                return []
            cursor = await conn.execute(
                """
                DELETE FROM cache_entries WHERE id IN (
                    SELECT id FROM cache_entries WHERE expires_at < now() ORDER BY expires_at LIMIT %s
                ) RETURNING tenant, exact_key
                """,
                (batch,),
            )
            return [(tenant, key) for tenant, key in await cursor.fetchall()]

    async def delete_keys(self, tenant: str, keys: list[str]) -> int:
        if not keys:
            return 0
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "DELETE FROM cache_entries WHERE tenant = %s AND exact_key = ANY(%s)", (tenant, keys)
            )
            return cursor.rowcount

    # --- browsing and invalidation ------------------------------------------------------------

    async def page(self, where: EntryFilter, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        """A page of entries, newest first, and how many match in all."""
        clause, params = _where(where)
        async with self._pool.connection() as conn:
            cursor = await conn.execute(f"SELECT count(*) FROM cache_entries WHERE {clause}", params)
            total_row = await cursor.fetchone()
            cursor = await conn.execute(
                f"SELECT {SUMMARY_COLUMNS} FROM cache_entries WHERE {clause}"
                " ORDER BY created_at DESC, id LIMIT %(limit)s OFFSET %(offset)s",
                {**params, "limit": limit, "offset": offset},
            )
            rows = await cursor.fetchall()
        return [_summary(row) for row in rows], int(total_row[0]) if total_row else 0

    async def find(self, tenant: str, entry: str) -> dict[str, Any] | None:
        """One entry (with its completion) by id or exact key."""
        column, value = _id_or_key(entry)
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                f"SELECT {SUMMARY_COLUMNS}, context_text, completion FROM cache_entries"
                f" WHERE tenant = %s AND {column} = %s",
                (tenant, value),
            )
            row = await cursor.fetchone()
        if row is None:
            return None
        return {**_summary(row[:-2]), "context_text": row[-2], "completion": row[-1]}

    async def delete_one(self, tenant: str, entry: str) -> list[str]:
        column, value = _id_or_key(entry)
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                f"DELETE FROM cache_entries WHERE tenant = %s AND {column} = %s RETURNING exact_key", (tenant, value)
            )
            return [row[0] for row in await cursor.fetchall()]

    async def delete_matching(self, where: EntryFilter) -> list[str]:
        clause, params = _where(where)
        async with self._pool.connection() as conn:
            cursor = await conn.execute(f"DELETE FROM cache_entries WHERE {clause} RETURNING exact_key", params)
            return [row[0] for row in await cursor.fetchall()]

    async def delete_near(
        self,
        where: EntryFilter,
        embedding: list[float],
        min_similarity: float,
        entry_ids: list[str] | None = None,
    ) -> list[str]:
        """Delete the tenant's entries whose prompt vector is at least `min_similarity` to `embedding`
        (only those of `entry_ids`, when given: the ones a preview showed)."""
        table, _ = await self._ensure_vector_table(len(embedding))
        clause, params = _where(where, alias="e.")
        if entry_ids is not None:
            clause += " AND e.id = ANY(%(ids)s)"
            params["ids"] = [_uuid_or_none(value) for value in entry_ids]
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                f"""
                DELETE FROM cache_entries WHERE id IN (
                    SELECT e.id FROM {table} v JOIN cache_entries e ON e.id = v.entry_id
                    WHERE {clause} AND 1 - (v.embedding <=> %(v)s) >= %(min_similarity)s
                ) RETURNING exact_key
                """,
                {**params, "v": np.asarray(embedding, dtype=np.float32), "min_similarity": min_similarity},
            )
            return [row[0] for row in await cursor.fetchall()]

    async def near(
        self, where: EntryFilter, embedding: list[float], min_similarity: float, limit: int
    ) -> list[dict[str, Any]]:
        """What delete_near would delete (at most `limit`), most similar first, each with its similarity."""
        table, _ = await self._ensure_vector_table(len(embedding))
        clause, params = _where(where, alias="e.")
        columns = ", ".join(f"e.{column}" for column in SUMMARY_COLUMNS.split(", "))
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                f"""
                SELECT {columns}, 1 - (v.embedding <=> %(v)s) AS similarity
                FROM {table} v JOIN cache_entries e ON e.id = v.entry_id
                WHERE {clause} AND 1 - (v.embedding <=> %(v)s) >= %(min_similarity)s
                ORDER BY v.embedding <=> %(v)s LIMIT %(limit)s
                """,
                {
                    **params,
                    "v": np.asarray(embedding, dtype=np.float32),
                    "min_similarity": min_similarity,
                    "limit": limit,
                },
            )
            rows = await cursor.fetchall()
        return [{**_summary(row[:-1]), "similarity": float(row[-1])} for row in rows]


SUMMARY_COLUMNS = "id, exact_key, tenant, namespace, model, prompt_text, created_at, expires_at, hit_count, last_hit_at"


def _summary(row: Any) -> dict[str, Any]:
    entry_id, key, tenant, namespace, model, prompt, created, expires, hits, last_hit = row
    return {
        "id": str(entry_id),
        "key": key,
        "tenant": tenant,
        "namespace": namespace,
        "model": model,
        "prompt": prompt,
        "created_at": created.timestamp(),
        "expires_at": expires.timestamp(),
        "hit_count": int(hits),
        "last_hit_at": last_hit.timestamp() if last_hit else None,
    }


def _uuid_or_none(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def _id_or_key(entry: str) -> tuple[str, Any]:
    try:
        return "id", uuid.UUID(entry)
    except ValueError:
        return "exact_key", entry


def _where(where: EntryFilter, alias: str = "") -> tuple[str, dict[str, Any]]:
    """A parameterized WHERE clause for a filter (column names are fixed; values are parameters)."""
    parts = [f"{alias}tenant = %(tenant)s"]
    params: dict[str, Any] = {"tenant": where.tenant}
    if where.namespace is not None:
        parts.append(f"{alias}namespace = %(namespace)s")
        params["namespace"] = where.namespace
    if where.model is not None:
        parts.append(f"{alias}model = %(model)s")
        params["model"] = where.model
    if where.text:
        parts.append(f"{alias}prompt_text ILIKE %(text)s")
        params["text"] = "%" + where.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    if where.created_after is not None:
        parts.append(f"{alias}created_at >= %(after)s")
        params["after"] = _ts(where.created_after)
    if where.created_before is not None:
        parts.append(f"{alias}created_at < %(before)s")
        params["before"] = _ts(where.created_before)
    return " AND ".join(parts), params
