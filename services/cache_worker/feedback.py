"""Wrong-hit feedback: the semantic hits served (so one can be reported by its request id) and the
(entry, question) pairs reported as wrong, which are never served again.

Knows nothing of the broker. PostgreSQL keeps both (the cache worker's data); a Redis set of pair
hashes per tenant answers the lookup's check in one round trip, shared by every cache worker, so
a reported pair stops being served everywhere as soon as the report is answered.

The sets are trusted only while a marker says they were loaded completely into this very Redis: it
holds the run id of the Redis instance (INFO server) the load ran on, set only when that run id did
not change during the load, and compared with the live one on every check (in one script). A
Redis that restarted has another run id, whether it came back empty or from a snapshot that has the
marker but not the pairs reported after it: the check then asks PostgreSQL until the sets are
rebuilt. A reconciliation every minute compares each tenant's set with PostgreSQL's count and puts
right a set that differs (a report whose Redis write failed while the marker stayed).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as redis
import redis.exceptions as redis_errors
from psycopg_pool import AsyncConnectionPool

from services.cache_worker.entry_store import Candidate
from services.cache_worker.keys import canonical_json
from services.cache_worker.metrics import DEGRADED, REFUSED, REPORTED_PAIRS
from shared.contracts.cache_admin import ReportedPair, ServedPair
from shared.db import index_if_missing

log = logging.getLogger(__name__)

REPORTED_REASON = "reported_wrong_hit"
LOAD_CHUNK = 5000
# The longest text kept of a question (or a stored prompt, or earlier turns): enough to read it and to
# evaluate it again (the embedder reads ~256 tokens); a pair is still known by the hash of all of it.
MAX_KEPT_CHARS = 4000

_RUN_ID = "string.match(redis.call('INFO', 'server'), 'run_id:(%w+)')"
# KEYS: the marker, the tenant's set; ARGV: the pair hashes. The members flags, or nil when the sets
# were not loaded into this Redis instance (no marker, or another instance's).
CHECK_SCRIPT = f"""
local marker = redis.call('GET', KEYS[1])
if not marker or marker ~= {_RUN_ID} then return false end
return redis.call('SMISMEMBER', KEYS[2], unpack(ARGV))
"""
# KEYS: the marker; ARGV: the run id when the load began. Set only if Redis has not restarted since.
MARK_SCRIPT = f"""
if {_RUN_ID} ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
return 1
"""

FEEDBACK_DDL = [
    """
    CREATE TABLE IF NOT EXISTS served_pairs (
        request_id text PRIMARY KEY,
        tenant text NOT NULL,
        entry_id uuid NOT NULL,
        entry_key text NOT NULL,
        asked_prompt text NOT NULL,
        asked_context text,
        similarity double precision,
        served_at timestamptz NOT NULL
    )""",
    index_if_missing(
        "served_pairs_entry",
        "CREATE INDEX IF NOT EXISTS served_pairs_entry ON served_pairs (tenant, entry_key, served_at DESC)",
    ),
    index_if_missing("served_pairs_age", "CREATE INDEX IF NOT EXISTS served_pairs_age ON served_pairs (served_at)"),
    """
    CREATE TABLE IF NOT EXISTS reported_pairs (
        pair_hash text PRIMARY KEY,
        tenant text NOT NULL,
        entry_key text NOT NULL,
        entry_id uuid,
        stored_prompt text,
        stored_context text,
        asked_prompt text NOT NULL,
        asked_context text,
        similarity double precision,
        request_id text,
        note text,
        reported_at timestamptz NOT NULL
    )""",
    index_if_missing(
        "reported_pairs_tenant",
        "CREATE INDEX IF NOT EXISTS reported_pairs_tenant ON reported_pairs (tenant, reported_at DESC)",
    ),
    # The namespace, so a namespace's flush takes its feedback along (rows from before have none: their
    # entry's key says it); a hit's pair hash, of the whole question (the row keeps MAX_KEPT_CHARS of it).
    "ALTER TABLE served_pairs ADD COLUMN IF NOT EXISTS namespace text",
    "ALTER TABLE served_pairs ADD COLUMN IF NOT EXISTS pair_hash text",
    "ALTER TABLE reported_pairs ADD COLUMN IF NOT EXISTS namespace text",
]


def pair_hash(tenant: str, entry_key: str, asked_prompt: str, asked_context: str | None) -> str:
    """What identifies a reported pair: the tenant, the stored entry's key, and the question as embedded."""
    return hashlib.sha256(canonical_json([tenant, entry_key, asked_prompt, asked_context])).hexdigest()


def kept(text: str | None) -> str | None:
    """Text as a row keeps it: at most MAX_KEPT_CHARS, without NUL bytes (PostgreSQL's text refuses them)."""
    return text.replace("\x00", "")[:MAX_KEPT_CHARS] if text is not None else None


def _namespace_filter(namespace: str | None, keys: list[str]) -> tuple[str, list[Any]]:
    """The rows of one namespace (None: all): by their namespace, or (rows from before it was kept) by
    the deleted entries' keys."""
    if namespace is None:
        return "", []
    return " AND (namespace = %s OR (namespace IS NULL AND entry_key = ANY(%s)))", [namespace, keys]


@dataclass(frozen=True)
class Served:
    """One semantic hit waiting to be written."""

    request_id: str
    tenant: str
    namespace: str
    entry_id: str
    entry_key: str
    asked_prompt: str
    asked_context: str | None
    similarity: float | None
    served_at: float


@dataclass(frozen=True)
class FoundHit:
    """A semantic hit found by its request id: as listed, and what a report of it needs."""

    pair: ServedPair
    digest: str
    namespace: str | None


class ServedPairs:
    """The semantic hits of the last `window_seconds`, written in batches off the request path.

    Only hits of requests that let the cache store (not `Cache-Control: no-store`); deleted with
    their entry, namespace or tenant, and after the window in any case.
    """

    def __init__(self, pool: AsyncConnectionPool, window_seconds: int, interval: float = 0.25) -> None:
        self._pool = pool
        self.window_seconds = window_seconds
        self._interval = interval
        self._pending: list[Served] = []

    def record(self, served: Served) -> None:
        if self.window_seconds > 0:
            self._pending.append(served)

    async def flush(self) -> None:
        batch, self._pending = self._pending, []
        if not batch:
            return
        try:
            async with self._pool.connection() as conn, conn.cursor() as cur:
                # Only while the entry exists: a hit written after its entry's deletion (another worker's
                # batch) would outlive what deleted it.
                await cur.executemany(
                    """
                    INSERT INTO served_pairs (request_id, tenant, namespace, entry_id, entry_key, asked_prompt,
                                              asked_context, similarity, served_at, pair_hash)
                    SELECT %(request_id)s, %(tenant)s, %(namespace)s, %(entry_id)s, %(entry_key)s, %(prompt)s,
                           %(context)s, %(similarity)s, %(served_at)s, %(pair_hash)s
                    WHERE EXISTS (SELECT 1 FROM cache_entries WHERE id = %(entry_id)s)
                    ON CONFLICT (request_id) DO NOTHING
                    """,
                    [
                        {
                            "request_id": s.request_id,
                            "tenant": s.tenant,
                            "namespace": s.namespace,
                            "entry_id": uuid.UUID(s.entry_id),
                            "entry_key": s.entry_key,
                            "prompt": kept(s.asked_prompt),
                            "context": kept(s.asked_context),
                            "similarity": s.similarity,
                            "served_at": datetime.fromtimestamp(s.served_at, UTC),
                            "pair_hash": pair_hash(s.tenant, s.entry_key, s.asked_prompt, s.asked_context),
                        }
                        for s in batch
                    ],
                )
        except Exception as exc:
            log.warning("recording %d semantic hits for feedback failed: %s", len(batch), exc)
            DEGRADED.labels("postgres", "served_pairs").inc()

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.flush()

    async def sweep(self) -> int:
        """Forget the hits older than the window."""
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "DELETE FROM served_pairs WHERE served_at < now() - make_interval(secs => %s)",
                (float(self.window_seconds),),
            )
            return cursor.rowcount

    async def find(self, tenant: str, request_id: str, wait_seconds: float = 0.0) -> FoundHit | None:
        """The semantic hit of a request; waits up to `wait_seconds` for one just served (batched writes)."""
        deadline = time.monotonic() + wait_seconds
        while True:
            await self.flush()
            async with self._pool.connection() as conn:
                cursor = await conn.execute(
                    f"SELECT {SERVED_COLUMNS}, pair_hash, namespace FROM served_pairs"
                    " WHERE tenant = %s AND request_id = %s",
                    (tenant, request_id),
                )
                row = await cursor.fetchone()
            if row is not None:
                pair = _served(row[:-2])
                return FoundHit(pair, row[-2] or _hash_of(pair), row[-1])
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(0.1)

    async def for_entry(self, tenant: str, entry_key: str, limit: int) -> list[ServedPair]:
        """The questions an entry answered by semantic hits, newest first, each marked if reported."""
        await self.flush()
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                f"SELECT {SERVED_COLUMNS}, pair_hash FROM served_pairs WHERE tenant = %s AND entry_key = %s"
                " ORDER BY served_at DESC LIMIT %s",
                (tenant, entry_key, limit),
            )
            rows = await cursor.fetchall()
            pairs = [(_served(row[:-1]), row[-1]) for row in rows]
            digests = [digest or _hash_of(pair) for pair, digest in pairs]
            cursor = await conn.execute(
                "SELECT pair_hash FROM reported_pairs WHERE tenant = %s AND pair_hash = ANY(%s)", (tenant, digests)
            )
            reported = {row[0] for row in await cursor.fetchall()}
        # Rows from before the cap are cut here, after their hash was taken of the whole question.
        return [
            pair.model_copy(
                update={
                    "reported": digest in reported,
                    "asked_prompt": pair.asked_prompt[:MAX_KEPT_CHARS],
                    "asked_context": kept(pair.asked_context),
                }
            )
            for (pair, _), digest in zip(pairs, digests, strict=True)
        ]

    async def forget_entries(self, tenant: str, keys: list[str]) -> int:
        """Forget the hits of deleted entries; returns how many."""
        if not keys:
            return 0
        await self.flush()
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "DELETE FROM served_pairs WHERE tenant = %s AND entry_key = ANY(%s)", (tenant, keys)
            )
            return cursor.rowcount

    async def forget_flushed(self, tenant: str, namespace: str | None, keys: list[str]) -> int:
        """Forget the hits of a flushed tenant, or of one of its namespaces (`keys`: the entries deleted)."""
        await self.flush()
        where, params = _namespace_filter(namespace, keys)
        async with self._pool.connection() as conn:
            cursor = await conn.execute(f"DELETE FROM served_pairs WHERE tenant = %s{where}", [tenant, *params])
            return cursor.rowcount


def _hash_of(pair: ServedPair) -> str:
    """A row from before hits kept their pair hash kept the whole question: its hash is computed."""
    return pair_hash(pair.tenant, pair.entry_key, pair.asked_prompt, pair.asked_context)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


SERVED_COLUMNS = "request_id, tenant, entry_id, entry_key, asked_prompt, asked_context, similarity, served_at"


def _served(row: Sequence[Any]) -> ServedPair:
    request_id, tenant, entry_id, entry_key, prompt, context, similarity, served_at = row
    return ServedPair(
        request_id=request_id,
        tenant=tenant,
        entry_id=str(entry_id),
        entry_key=entry_key,
        asked_prompt=prompt,
        asked_context=context,
        similarity=similarity,
        served_at=served_at.timestamp(),
    )


@dataclass(frozen=True)
class NewReport:
    """A pair to report: the stored entry and the question it was wrongly served for."""

    tenant: str
    entry_key: str
    entry_id: str | None
    stored_prompt: str | None
    stored_context: str | None
    asked_prompt: str
    asked_context: str | None
    similarity: float | None
    request_id: str | None
    note: str | None
    namespace: str | None = None
    digest: str | None = None  # the pair's hash when known (a served hit's: of the whole question)


class RedisTooSlow(Exception):
    """Redis did not answer the reported-pair check in time."""


class ReportedPairs:
    """Reported pairs: kept in PostgreSQL, checked on every semantic lookup through Redis."""

    def __init__(
        self, pool: AsyncConnectionPool, client: redis.Redis, prefix: str, check_timeout_seconds: float = 0.5
    ) -> None:
        self._pool = pool
        self._redis = client
        self._prefix = prefix
        self._check_timeout = check_timeout_seconds
        self._reloading: asyncio.Task[None] | None = None
        self._check = client.register_script(CHECK_SCRIPT)
        self._mark = client.register_script(MARK_SCRIPT)

    def _set(self, tenant: str) -> str:
        return f"{self._prefix}:reported:t:{tenant}"

    @property
    def _marker(self) -> str:
        # Apart from the sets: no tenant is named "_..." (a slug starts with a letter or digit).
        return f"{self._prefix}:reported:_loaded"

    def _legacy_keys(self, tenants: set[str]) -> list[str]:
        """Keys of the layout before sets moved under `t:`, where the marker `reported:loaded` was also the
        set of a tenant named "loaded": rebuilt from PostgreSQL under the new names, the old ones go."""
        return [f"{self._prefix}:reported:loaded", *(f"{self._prefix}:reported:{tenant}" for tenant in tenants)]

    async def ensure_schema(self) -> None:
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('feedback_pairs'))")
            for statement in FEEDBACK_DDL:
                await conn.execute(statement)

    async def _run_id(self) -> str:
        """The Redis instance's run id: another one after every restart."""
        return str((await self._redis.info("server"))["run_id"])

    async def loaded(self) -> bool:
        """Whether the sets were loaded completely into this Redis instance."""
        marker = await self._redis.get(self._marker)
        return marker is not None and _text(marker) == await self._run_id()

    async def load_into_redis(self) -> int:
        """Put every reported pair's hash in its tenant's Redis set, then mark the sets loaded into this Redis
        instance, unless it restarted meanwhile (the sets would miss what it lost); returns how many."""
        run_id = await self._run_id()
        loaded = 0
        async with self._pool.connection() as conn:
            cursor = await conn.execute("SELECT tenant, pair_hash FROM reported_pairs ORDER BY tenant")
            rows = await cursor.fetchall()
        for start in range(0, len(rows), LOAD_CHUNK):
            async with self._redis.pipeline(transaction=False) as pipe:
                for tenant, digest in rows[start : start + LOAD_CHUNK]:
                    pipe.sadd(self._set(tenant), digest)
                await pipe.execute()
            loaded += len(rows[start : start + LOAD_CHUNK])
        await self._redis.delete(*self._legacy_keys({tenant for tenant, _ in rows}))
        if not await self._mark(keys=[self._marker], args=[run_id]):
            log.warning("Redis restarted while reported pairs were loaded into it: the check asks PostgreSQL")
        return loaded

    async def reconcile(self) -> list[str]:
        """Put right each tenant's set whose size differs from PostgreSQL's count; returns those tenants.

        The dangerous difference is a pair missing from a set while the marker stands (its report's
        Redis write failed, Redis did not restart): it would be served. Sets of tenants with no pairs
        left are not looked for (that needs a scan of every key); they only hold pairs no longer reported.
        """
        if not await self.loaded():
            self._reload_soon()
            return []
        async with self._pool.connection() as conn:
            cursor = await conn.execute("SELECT tenant, count(*) FROM reported_pairs GROUP BY tenant ORDER BY tenant")
            counts = {tenant: int(count) for tenant, count in await cursor.fetchall()}
        async with self._redis.pipeline(transaction=False) as pipe:
            for tenant in counts:
                pipe.scard(self._set(tenant))
            sizes = await pipe.execute()
        differing = [tenant for tenant, size in zip(counts, sizes, strict=True) if size != counts[tenant]]
        for tenant in differing:
            await self._repair(tenant)
        if differing:
            log.warning("reported-pair sets differed from PostgreSQL and were repaired: %d tenants", len(differing))
            DEGRADED.labels("redis", "reported_pairs_reconciled").inc(len(differing))
        return differing

    async def _repair(self, tenant: str) -> None:
        # Redis first: a pair it holds was in PostgreSQL before (a report writes there, then to Redis),
        # so one of them that PostgreSQL no longer has was deleted, not reported meanwhile.
        members = {_text(member) for member in await self._redis.smembers(self._set(tenant))}
        async with self._pool.connection() as conn:
            cursor = await conn.execute("SELECT pair_hash FROM reported_pairs WHERE tenant = %s", (tenant,))
            in_postgres = {row[0] for row in await cursor.fetchall()}
        missing, stale = in_postgres - members, members - in_postgres
        async with self._redis.pipeline(transaction=False) as pipe:
            if missing:
                pipe.sadd(self._set(tenant), *missing)
            if stale:
                pipe.srem(self._set(tenant), *stale)
            await pipe.execute()

    async def run_reconcile(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.reconcile()
            except Exception as exc:
                log.warning("reconciling reported pairs with Redis failed: %s", exc)

    async def drop_reported(
        self, tenant: str, prompt: str, context: str | None, candidates: list[Candidate]
    ) -> tuple[list[Candidate], list[str]]:
        """The candidates whose pair with this question was not reported, and a refusal per one that was.

        If neither Redis nor PostgreSQL can tell, every candidate is refused: a miss, never a
        reported answer served again.
        """
        if not candidates:
            return candidates, []
        hashes = [pair_hash(tenant, c.answer.exact_key, prompt, context) for c in candidates]
        try:
            reported = await self._reported(tenant, hashes)
        except Exception as exc:
            log.warning("checking reported pairs failed, refusing the semantic candidates: %r", exc)
            DEGRADED.labels("redis" if isinstance(exc, RedisTooSlow) else "postgres", "reported_pairs").inc()
            REFUSED.labels("reported_check_failed").inc(len(candidates))
            return [], ["reported_check_failed"] * len(candidates)
        allowed = [c for c, digest in zip(candidates, hashes, strict=True) if digest not in reported]
        refused = len(candidates) - len(allowed)
        if refused:
            REFUSED.labels(REPORTED_REASON).inc(refused)
        return allowed, [REPORTED_REASON] * refused

    async def _reported(self, tenant: str, hashes: list[str]) -> set[str]:
        try:
            async with asyncio.timeout(self._check_timeout):
                members = await self._check(keys=[self._marker, self._set(tenant)], args=hashes)
            if members is not None:
                return {digest for digest, member in zip(hashes, members, strict=True) if member}
            self._reload_soon()
        except (TimeoutError, redis_errors.TimeoutError) as exc:
            # A hung Redis: the request has waited long enough (its exact lookup may have waited too);
            # refused, it goes upstream now rather than after a wait on PostgreSQL as well.
            raise RedisTooSlow(f"no answer within {self._check_timeout:g} s") from exc
        except Exception as exc:
            log.warning("reported-pair check in Redis failed, asking PostgreSQL: %s", exc)
            DEGRADED.labels("redis", "reported_pairs").inc()
        async with self._pool.connection(timeout=1.0) as conn:
            cursor = await conn.execute(
                "SELECT pair_hash FROM reported_pairs WHERE tenant = %s AND pair_hash = ANY(%s)", (tenant, hashes)
            )
            return {row[0] for row in await cursor.fetchall()}

    async def wait_reloaded(self) -> None:
        """Until a rebuild of the sets under way is done."""
        if self._reloading is not None:
            await asyncio.shield(self._reloading)

    def _reload_soon(self) -> None:
        """Redis lost the sets or restarted: rebuild them from PostgreSQL, once at a time."""
        if self._reloading is None or self._reloading.done():
            self._reloading = asyncio.get_running_loop().create_task(self._reload())

    async def _reload(self) -> None:
        try:
            count = await self.load_into_redis()
            log.info("reported pairs reloaded into Redis: %d", count)
        except Exception as exc:
            log.warning("reloading reported pairs into Redis failed: %s", exc)

    async def report(self, new: NewReport) -> tuple[ReportedPair, bool]:
        """Record a pair (idempotent) and make every cache worker refuse it; returns it and whether it is new."""
        digest = new.digest or pair_hash(new.tenant, new.entry_key, new.asked_prompt, new.asked_context)
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                """
                INSERT INTO reported_pairs (pair_hash, tenant, namespace, entry_key, entry_id, stored_prompt,
                                            stored_context, asked_prompt, asked_context, similarity, request_id,
                                            note, reported_at)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now())
                ON CONFLICT (pair_hash) DO NOTHING
                """,
                (
                    digest,
                    new.tenant,
                    new.namespace,
                    new.entry_key,
                    uuid.UUID(new.entry_id) if new.entry_id else None,
                    kept(new.stored_prompt),
                    kept(new.stored_context),
                    kept(new.asked_prompt),
                    kept(new.asked_context),
                    new.similarity,
                    new.request_id,
                    new.note,
                ),
            )
            created = cursor.rowcount == 1
            cursor = await conn.execute(
                f"SELECT {REPORTED_COLUMNS} FROM reported_pairs WHERE pair_hash = %s", (digest,)
            )
            row = await cursor.fetchone()
        assert row is not None
        # Before the answer: once the caller hears "reported", no cache worker serves the pair.
        # Should Redis be down, the lookups' check asks PostgreSQL instead (it has the pair now).
        try:
            await self._redis.sadd(self._set(new.tenant), digest)
        except Exception as exc:
            log.warning("adding a reported pair to Redis failed: %s", exc)
            DEGRADED.labels("redis", "reported_pairs").inc()
            await self._forget_marker()
        if created:
            REPORTED_PAIRS.inc()
        return _reported_pair(row), created

    async def _forget_marker(self) -> None:
        # The set misses a pair: until it is rebuilt, the lookups must ask PostgreSQL.
        try:
            await self._redis.delete(self._marker)
        except Exception as exc:
            log.warning("Redis is unreachable; lookups fall back to PostgreSQL on their own: %s", exc)

    async def forget_flushed(self, tenant: str, namespace: str | None, keys: list[str]) -> int:
        """Forget the reported pairs of a flushed tenant, or of one of its namespaces (`keys`: the entries
        deleted), in PostgreSQL and in the tenant's Redis set; returns how many."""
        where, params = _namespace_filter(namespace, keys)
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                f"DELETE FROM reported_pairs WHERE tenant = %s{where} RETURNING pair_hash", [tenant, *params]
            )
            digests = [row[0] for row in await cursor.fetchall()]
        try:
            for start in range(0, len(digests), LOAD_CHUNK):
                await self._redis.srem(self._set(tenant), *digests[start : start + LOAD_CHUNK])
        except Exception as exc:  # the set holds pairs no longer reported until the next reconciliation
            log.warning("removing forgotten reported pairs from Redis failed: %s", exc)
            DEGRADED.labels("redis", "reported_pairs").inc()
        return len(digests)

    async def page(
        self, tenant: str | None, limit: int, offset: int, oldest_first: bool = False
    ) -> tuple[list[ReportedPair], int]:
        """Reported pairs of a tenant (None: all), newest (or oldest) first, and how many there are."""
        where, params = ("WHERE tenant = %s", [tenant]) if tenant is not None else ("", [])
        order = "reported_at, pair_hash" if oldest_first else "reported_at DESC, pair_hash"
        async with self._pool.connection() as conn:
            cursor = await conn.execute(f"SELECT count(*) FROM reported_pairs {where}", params)
            total = await cursor.fetchone()
            cursor = await conn.execute(
                f"SELECT {REPORTED_COLUMNS_KEPT} FROM reported_pairs {where} ORDER BY {order} LIMIT %s OFFSET %s",
                [*params, limit, offset],
            )
            rows = await cursor.fetchall()
        return [_reported_pair(row) for row in rows], int(total[0]) if total else 0


REPORTED_COLUMNS = (
    "pair_hash, tenant, entry_key, entry_id, stored_prompt, stored_context, asked_prompt, asked_context,"
    " similarity, request_id, note, reported_at"
)
# The same, the texts cut to MAX_KEPT_CHARS: rows from before the cap can be longer, and a page of
# them must fit in one broker message.
REPORTED_COLUMNS_KEPT = (
    f"pair_hash, tenant, entry_key, entry_id, left(stored_prompt, {MAX_KEPT_CHARS}),"
    f" left(stored_context, {MAX_KEPT_CHARS}), left(asked_prompt, {MAX_KEPT_CHARS}),"
    f" left(asked_context, {MAX_KEPT_CHARS}), similarity, request_id, note, reported_at"
)


def _reported_pair(row: Sequence[Any]) -> ReportedPair:
    (digest, tenant, entry_key, entry_id, stored_prompt, stored_context, asked_prompt, asked_context,
     similarity, request_id, note, reported_at) = row  # fmt: skip
    return ReportedPair(
        pair_hash=digest,
        tenant=tenant,
        entry_key=entry_key,
        entry_id=str(entry_id) if entry_id else None,
        stored_prompt=stored_prompt,
        stored_context=stored_context,
        asked_prompt=asked_prompt,
        asked_context=asked_context,
        similarity=similarity,
        request_id=request_id,
        note=note,
        reported_at=reported_at.timestamp(),
    )
