"""The cache worker's stores on real Redis and PostgreSQL+pgvector: the per-tenant cap evicts the least
recently used entries, expired rows are swept, and an expired entry is never a semantic candidate."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import redis.asyncio as redis

from scripts.stack import start_embedded_postgres
from services.cache_worker.entries import CachedAnswer
from services.cache_worker.entry_store import EntryStore, NewEntry
from services.cache_worker.exact_store import ExactStore
from services.cache_worker.storing import Storer
from services.cache_worker.upkeep import HitRecorder, Sweeper
from shared.contracts import CompletionGenerated
from shared.db import open_pool

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    server = start_embedded_postgres(Path(tmp_path_factory.mktemp("pg")) / "data", cleanup_mode="delete")
    yield server.get_uri()
    server.cleanup()


@pytest.fixture
async def stores(database_url: str) -> AsyncIterator[tuple[ExactStore, EntryStore]]:
    prefix = f"test-store-{uuid.uuid4().hex[:8]}"
    client = redis.from_url("redis://127.0.0.1:6379/0")
    pool = await open_pool(database_url, min_size=1, max_size=4, name="test")
    entries = EntryStore(pool, ef_search=40)
    await entries.ensure_schema()
    yield ExactStore(client, prefix), entries
    keys = [key async for key in client.scan_iter(f"{prefix}:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()
    await pool.close()


def vector(seed: int, dim: int = 8) -> list[float]:
    v = np.random.default_rng(seed).normal(size=dim)
    return (v / np.linalg.norm(v)).tolist()


def generated(tenant: str, key: str, seed: int, ttl: int | None = None) -> CompletionGenerated:
    return CompletionGenerated(
        event_id=uuid.uuid4().hex,
        tenant=tenant,
        namespace="default",
        model="m",
        exact_key=key,
        partition_key="p",
        prompt_text=f"prompt {seed}",
        embedding=vector(seed),
        embedding_model="e",
        completion={"choices": [{"message": {"content": f"answer {seed}"}, "finish_reason": "stop"}]},
        ttl_seconds=ttl,
        created_at=time.time(),
    )


async def no_embed(texts: list[str]) -> tuple[list[list[float]], str]:
    raise AssertionError("the store events carry their embeddings")


async def test_the_tenant_cap_evicts_the_least_recently_used(stores: tuple[ExactStore, EntryStore]) -> None:
    exact, entries = stores
    tenant = f"t-{uuid.uuid4().hex[:6]}"
    storer = Storer(exact, entries, no_embed, default_ttl_seconds=3600, max_entries=3)
    hits = HitRecorder(exact, entries)
    for i in range(3):
        await storer.store(generated(tenant, f"k{i}", i))
    hits.record(tenant, "k0")  # k0 used: k1 is now the least recently used
    await hits.flush()
    await storer.store(generated(tenant, "k3", 3))

    assert await exact.get("k1") is None
    assert all([await exact.get(k) for k in ("k0", "k2", "k3")])
    assert await entries.find(tenant, "k1") is None
    kept = await entries.find(tenant, "k0")
    assert kept is not None and kept["hit_count"] == 1 and kept["last_hit_at"] is not None
    # Other tenants are not touched by one tenant's cap.
    other = f"o-{uuid.uuid4().hex[:6]}"
    await storer.store(generated(other, "ok0", 10))
    assert await exact.get("ok0") is not None


async def test_expired_entries_are_never_candidates_and_get_swept(stores: tuple[ExactStore, EntryStore]) -> None:
    exact, entries = stores
    tenant = f"t-{uuid.uuid4().hex[:6]}"
    partition = f"p-{uuid.uuid4().hex[:6]}"
    old = CachedAnswer(
        entry_id=str(uuid.uuid4()), exact_key=f"old-{partition}", model="m", completion={}, created_at=time.time() - 10
    )
    await entries.put(
        NewEntry(
            answer=old,
            tenant=tenant,
            namespace="default",
            ttl_seconds=1,
            prompt_text="old",
            partition_key=partition,
            embedding_model="e",
            embedding=vector(1),
        )
    )
    assert await entries.nearest(partition, vector(1), None) == []  # expired 9 s ago
    assert await Sweeper(exact, entries, interval=1).sweep() >= 1
    assert await entries.find(tenant, old.exact_key) is None


async def test_nearest_respects_max_age(stores: tuple[ExactStore, EntryStore]) -> None:
    _, entries = stores
    partition = f"p-{uuid.uuid4().hex[:6]}"
    answer = CachedAnswer(
        entry_id=str(uuid.uuid4()), exact_key=f"k-{partition}", model="m", completion={}, created_at=time.time() - 30
    )
    await entries.put(
        NewEntry(
            answer=answer,
            tenant="t",
            namespace="default",
            ttl_seconds=3600,
            prompt_text="q",
            partition_key=partition,
            embedding_model="e",
            embedding=vector(2),
        )
    )
    [found] = await entries.nearest(partition, vector(2), None)
    assert found.similarity == pytest.approx(1.0, abs=1e-5) and found.context_similarity is None
    assert await entries.nearest(partition, vector(2), max_age_seconds=10) == []
    assert await entries.nearest(f"other-{partition}", vector(2), None) == []
