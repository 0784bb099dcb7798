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
from services.cache_worker.feedback import NewReport, ReportedPairs, pair_hash
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


async def test_a_snapshot_older_than_a_report_does_not_serve_the_pair(
    store: tuple[ReportedPairs, str], client: redis.Redis
) -> None:
    reported, prefix = store
    await reported.load_into_redis()
    digest = await report(reported, "acme", "entry-1")
    assert not await served(reported, "acme", "entry-1")

    # What Redis reloads from a snapshot taken before the report: the marker that the sets were loaded
    # (written by the instance before the restart), the set without the pair.
    for key in await holding(client, prefix, digest):
        await client.srem(key, digest)
    markers = [k async for k in client.scan_iter(f"{prefix}:reported*") if await client.type(k) == b"string"]
    assert markers
    for key in markers:
        await client.set(key, "0" * 40)  # another instance's run id

    assert not await served(reported, "acme", "entry-1")
    assert await served(reported, "acme", "entry-2")  # another entry's pair was never reported
    # The sets are rebuilt from PostgreSQL, and the marker names this instance again.
    await reported.wait_reloaded()
    assert await holding(client, prefix, digest)
    assert not await served(reported, "acme", "entry-1")


async def test_a_load_during_which_redis_restarted_is_not_trusted(
    store: tuple[ReportedPairs, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    reported, _ = store
    await report(reported, "acme", "entry-1")
    run_ids = iter(["before-restart", "after-restart", "after-restart", "after-restart"])

    async def run_id() -> str:
        return next(run_ids)

    monkeypatch.setattr(reported, "_run_id", run_id)
    await reported.load_into_redis()
    assert not await reported.loaded()


async def test_reconcile_restores_a_missing_pair_and_drops_a_stale_one(
    store: tuple[ReportedPairs, str], client: redis.Redis
) -> None:
    reported, prefix = store
    kept = await report(reported, "acme", "entry-1")
    other = await report(reported, "other", "entry-9")
    await reported.load_into_redis()
    # Redis lost a pair without a restart (a write that failed while the marker stayed), and another
    # set holds a pair whose row is gone.
    [acme_set] = await holding(client, prefix, kept)
    [other_set] = await holding(client, prefix, other)
    await client.srem(acme_set, kept)
    assert await served(reported, "acme", "entry-1")  # the very hazard reconciling bounds in time
    stale = pair_hash("other", "entry-gone", ASKED, None)
    await client.sadd(other_set, stale)

    assert await reported.reconcile() == ["acme", "other"]

    assert await holding(client, prefix, kept) == [acme_set]
    assert await holding(client, prefix, stale) == []
    assert not await served(reported, "acme", "entry-1")
    assert await reported.reconcile() == []


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
