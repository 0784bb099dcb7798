"""Reported pairs on real Redis and PostgreSQL (embedded): the Redis sets are trusted only when this very
Redis instance holds a complete load of them. A Redis restart that reloads an older snapshot (the marker
saved, later pairs not), or a restart in the middle of a load, must never serve a reported pair."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as redis

from scripts.stack import start_embedded_postgres
from services.cache_worker.entries import CachedAnswer
from services.cache_worker.entry_store import Candidate
from services.cache_worker.feedback import NewReport, ReportedPairs
from shared.db import open_pool

pytestmark = pytest.mark.integration

ASKED = "What is water's boiling point at sea level?"


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    server = start_embedded_postgres(Path(tmp_path_factory.mktemp("pg")) / "data", cleanup_mode="delete")
    yield server.get_uri()
    server.cleanup()


@pytest.fixture
async def client() -> AsyncIterator[redis.Redis]:
    client = redis.from_url("redis://127.0.0.1:6379/0")
    yield client
    await client.aclose()


@pytest.fixture
async def store(database_url: str, client: redis.Redis) -> AsyncIterator[tuple[ReportedPairs, str]]:
    prefix = f"test-reported-{uuid.uuid4().hex[:8]}"
    pool = await open_pool(database_url, min_size=1, max_size=4, name="test", vector=False)
    reported = ReportedPairs(pool, client, prefix)
    await reported.ensure_schema()
    async with pool.connection() as conn:
        await conn.execute("TRUNCATE reported_pairs")
    yield reported, prefix
    keys = [key async for key in client.scan_iter(f"{prefix}:*")]
    if keys:
        await client.delete(*keys)
    await pool.close()


def candidate(key: str) -> Candidate:
    return Candidate(CachedAnswer(entry_id="e", exact_key=key, model="m", completion={}, created_at=0.0), 0.9)


async def report(reported: ReportedPairs, tenant: str, entry_key: str) -> str:
    new = NewReport(
        tenant=tenant,
        entry_key=entry_key,
        entry_id=None,
        stored_prompt="What is the boiling point of water at sea level?",
        stored_context=None,
        asked_prompt=ASKED,
        asked_context=None,
        similarity=None,
        request_id=None,
        note=None,
    )
    pair, _ = await reported.report(new)
    return pair.pair_hash


async def served(reported: ReportedPairs, tenant: str, entry_key: str) -> bool:
    kept, _ = await reported.drop_reported(tenant, ASKED, None, [candidate(entry_key)])
    return bool(kept)


async def holding(client: redis.Redis, prefix: str, digest: str) -> list[bytes]:
    """The Redis sets (any layout) that hold a pair's hash."""
    return [k async for k in client.scan_iter(f"{prefix}:reported*") if await client.type(k) == b"set"
            and await client.sismember(k, digest)]  # fmt: skip


async def test_the_sets_of_the_old_layout_are_rebuilt_under_the_new_names(
    store: tuple[ReportedPairs, str], client: redis.Redis
) -> None:
    """Before, `reported:loaded` was both the marker and the set of a tenant named "loaded"."""
    reported, prefix = store
    digest = await report(reported, "loaded", "entry-1")
    await report(reported, "acme", "entry-1")
    await client.delete(*[k async for k in client.scan_iter(f"{prefix}:reported*")])
    await client.set(f"{prefix}:reported:loaded", "1")  # what the old version left
    await client.sadd(f"{prefix}:reported:acme", "old")

    await reported.load_into_redis()

    assert await client.exists(f"{prefix}:reported:loaded", f"{prefix}:reported:acme") == 0
    assert await holding(client, prefix, digest) == [f"{prefix}:reported:t:loaded".encode()]
    assert not await served(reported, "loaded", "entry-1")
