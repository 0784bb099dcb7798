"""The cache worker's stores on real Redis and PostgreSQL+pgvector: the per-tenant cap evicts the least
recently used entries, expired rows are swept, and an expired entry is never a semantic candidate."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import redis.asyncio as redis

from scripts.stack import start_embedded_postgres
from services.cache_worker.admin import CacheAdmin
from services.cache_worker.entries import CachedAnswer, PendingStore
from services.cache_worker.entry_store import EntryStore, NewEntry
from services.cache_worker.exact_store import LEADING, ExactStore
from services.cache_worker.flights import ReplyRoute
from services.cache_worker.lookup import Following, Lookup, LookupPolicy, Miss
from services.cache_worker.storing import Storer
from services.cache_worker.upkeep import HitRecorder, Sweeper
from shared.contracts.cache_admin import EntriesDeleted, FlushEntries
from shared.contracts.completions import CacheControls, CompletionRequest
from shared.contracts.store_events import CompletionGenerated
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
        completion={"choices": [{"message": {"content": f"answer {seed}"}, "finish_reason": "stop"}]},
        ttl_seconds=ttl,
        created_at=time.time(),
    )


async def store(exact: ExactStore, storer: Storer, event: CompletionGenerated, prompt: str | None = None) -> None:
    """Store an answer as the cache worker does: its lookup kept the store context under the key first."""
    seed = int(event.completion["choices"][0]["message"]["content"].split()[-1])
    pending = PendingStore(
        partition_key="p", prompt_text=prompt or f"prompt {seed}", embedding=vector(seed), embedding_model="e"
    )
    await exact.keep_pending(event.exact_key, pending.to_bytes(), 60)
    await storer.store(event)


async def no_embed(texts: list[str]) -> tuple[list[list[float]], str]:
    raise AssertionError("the store events carry their embeddings")


async def test_the_tenant_cap_evicts_the_least_recently_used(stores: tuple[ExactStore, EntryStore]) -> None:
    exact, entries = stores
    tenant = f"t-{uuid.uuid4().hex[:6]}"
    storer = Storer(exact, entries, default_ttl_seconds=3600, max_entries=3)
    hits = HitRecorder(exact, entries)
    for i in range(3):
        await store(exact, storer, generated(tenant, f"k{i}", i))
    hits.record(tenant, "k0")  # k0 used: k1 is now the least recently used
    await hits.flush()
    await store(exact, storer, generated(tenant, "k3", 3))

    assert await exact.get("k1") is None
    assert all([await exact.get(k) for k in ("k0", "k2", "k3")])
    assert await entries.find(tenant, "k1") is None
    kept = await entries.find(tenant, "k0")
    assert kept is not None and kept["hit_count"] == 1 and kept["last_hit_at"] is not None
    # Other tenants are not touched by one tenant's cap.
    other = f"o-{uuid.uuid4().hex[:6]}"
    await store(exact, storer, generated(other, "ok0", 10))
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
    await _put_vector(entries, partition, vector(2), created_at=time.time() - 30)
    [found] = await entries.nearest(partition, vector(2), None)
    assert found.similarity == pytest.approx(1.0, abs=1e-5) and found.turns is None
    assert found.embedding is not None and np.allclose(found.embedding, vector(2))  # for the hit verifier
    assert await entries.nearest(partition, vector(2), max_age_seconds=10) == []
    assert await entries.nearest(f"other-{partition}", vector(2), None) == []


async def _put_vector(
    entries: EntryStore,
    partition: str,
    embedding: list[float],
    turns: list[list[str]] | None = None,
    created_at: float | None = None,
) -> str:
    answer = CachedAnswer(
        entry_id=str(uuid.uuid4()),
        exact_key=f"k-{uuid.uuid4().hex}",
        model="m",
        completion={},
        created_at=created_at if created_at is not None else time.time(),
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
            embedding=embedding,
            turns=turns,
        )
    )
    return answer.entry_id


async def test_nearest_ranks_by_full_precision_similarity(stores: tuple[ExactStore, EntryStore]) -> None:
    """The index orders by half precision; the candidates come back by full-precision similarity, nearest first."""
    _, entries = stores
    partition = f"p-{uuid.uuid4().hex[:6]}"
    query = np.asarray(vector(3, dim=16))
    ids = []
    for step in (0.0, 0.05, 0.1, 0.5):
        v = query + step * np.asarray(vector(4, dim=16))
        ids.append(await _put_vector(entries, partition, (v / np.linalg.norm(v)).tolist(), [["user", f"step {step}"]]))
    for _ in range(40):  # other partitions' entries are not candidates, however near
        await _put_vector(entries, f"other-{partition}", vector(3, dim=16))

    found = await entries.nearest(partition, query.tolist(), None, limit=5)
    assert [c.answer.entry_id for c in found] == ids
    assert [c.similarity for c in found] == sorted((c.similarity for c in found), reverse=True)
    assert found[0].similarity == pytest.approx(1.0, abs=1e-6)
    # A conversation's earlier turns come back with it, whole, for the aligned match.
    assert [c.turns for c in found] == [[("user", f"step {step}")] for step in (0.0, 0.05, 0.1, 0.5)]


async def test_a_new_vector_table_gets_the_half_precision_index(stores: tuple[ExactStore, EntryStore]) -> None:
    _, entries = stores
    await _put_vector(entries, "p", vector(6, dim=17))
    async with entries._pool.connection() as conn:
        cursor = await conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'cache_vectors_d17'")
        names = {row[0] for row in await cursor.fetchall()}
    assert "cache_vectors_d17_hnsw_half" in names and "cache_vectors_d17_hnsw" not in names


async def test_a_table_with_the_old_full_precision_index_keeps_working(stores: tuple[ExactStore, EntryStore]) -> None:
    """A database from before the half-precision index is searched through the index it has; none is built."""
    _, entries = stores
    async with entries._pool.connection() as conn:
        await conn.execute(
            """
            CREATE TABLE cache_vectors_d13 (
                entry_id uuid PRIMARY KEY REFERENCES cache_entries (id) ON DELETE CASCADE,
                partition_key text NOT NULL,
                expires_at timestamptz NOT NULL,
                created_at timestamptz NOT NULL,
                embedding vector(13) NOT NULL
            )"""
        )
        await conn.execute(
            "CREATE INDEX cache_vectors_d13_hnsw ON cache_vectors_d13 USING hnsw (embedding vector_cosine_ops)"
        )
    near = await _put_vector(entries, "p", vector(7, dim=13))
    await _put_vector(entries, "p", vector(8, dim=13))

    found = await entries.nearest("p", vector(7, dim=13), None, limit=5)
    assert found[0].answer.entry_id == near and found[0].similarity == pytest.approx(1.0, abs=1e-6)
    assert len(found) == 2
    async with entries._pool.connection() as conn:
        cursor = await conn.execute("SELECT to_regclass('cache_vectors_d13_hnsw_half')")
        assert (await cursor.fetchone()) == (None,)


async def test_lookups_that_arrive_together_share_one_redis_round_trip(
    stores: tuple[ExactStore, EntryStore],
) -> None:
    exact, _ = stores
    tenant = f"t-{uuid.uuid4().hex[:6]}"
    answers = {
        f"k{i}": CachedAnswer(f"e{i}", f"k{i}", "m", {"choices": [{"message": {"content": str(i)}}]}, time.time())
        for i in range(5)
    }
    for answer in answers.values():
        await exact.put(tenant, answer, 60)
    wanted = ["k0", "k1", "k1", "missing", "k4", "k0"]
    probe = redis.from_url("redis://127.0.0.1:6379/0")
    try:
        before = (await probe.info("commandstats")).get("cmdstat_mget", {}).get("calls", 0)
        found = await asyncio.gather(*(exact.get(key) for key in wanted))
        after = (await probe.info("commandstats")).get("cmdstat_mget", {}).get("calls", 0)
    finally:
        await probe.aclose()
    assert [a.exact_key if a else None for a in found] == ["k0", "k1", "k1", None, "k4", "k0"]
    assert found[0] is not None and found[0].completion == answers["k0"].completion
    assert after - before == 1  # one MGET for all six (nobody else on this Redis sends MGETs in the suite)


async def test_a_cancelled_lookup_does_not_disturb_the_others(stores: tuple[ExactStore, EntryStore]) -> None:
    exact, _ = stores
    answer = CachedAnswer("e", "k", "m", {"choices": []}, time.time())
    await exact.put("t", answer, 60)
    cancelled = asyncio.ensure_future(exact.get("k"))
    kept = asyncio.ensure_future(exact.get("k"))
    await asyncio.sleep(0)
    cancelled.cancel()
    assert (await kept) == answer
    with pytest.raises(asyncio.CancelledError):
        await cancelled


async def test_a_tenant_flush_also_deletes_what_only_redis_holds(stores: tuple[ExactStore, EntryStore]) -> None:
    exact, entries = stores
    tenant, other = f"t-{uuid.uuid4().hex[:6]}", f"o-{uuid.uuid4().hex[:6]}"
    storer = Storer(exact, entries, default_ttl_seconds=3600, max_entries=100)
    await store(exact, storer, generated(tenant, "both", 1))
    # PostgreSQL refuses NUL bytes in text: this answer is kept in Redis only, and still served from there.
    await store(exact, storer, generated(tenant, "redis-only", 2), prompt="nul\x00 probe")
    await store(exact, storer, generated(other, "other", 3))
    assert await exact.get("redis-only") is not None and await entries.find(tenant, "redis-only") is None
    # An entry Redis let expire is still in the tenant's LRU order: not counted as deleted.
    await store(exact, storer, generated(tenant, "expired", 4), prompt="gone\x00")
    await exact._redis.delete(exact._entry("expired"))

    admin = CacheAdmin(exact, entries, no_embed)
    flushed = await admin.handle(FlushEntries(tenant=tenant))

    assert isinstance(flushed, EntriesDeleted)
    assert flushed.deleted == 2 and sorted(flushed.keys) == ["both", "redis-only"]
    assert await exact.get("both") is None and await exact.get("redis-only") is None
    assert await exact.get("other") is not None and await entries.find(other, "other") is not None


async def test_a_namespace_flush_also_deletes_what_only_redis_holds(stores: tuple[ExactStore, EntryStore]) -> None:
    exact, entries = stores
    tenant = f"t-{uuid.uuid4().hex[:6]}"
    storer = Storer(exact, entries, default_ttl_seconds=3600, max_entries=100)

    async def in_namespace(key: str, seed: int, namespace: str, nul: bool) -> None:
        event = generated(tenant, key, seed).model_copy(update={"namespace": namespace})
        await store(exact, storer, event, prompt="nul\x00 probe" if nul else None)

    await in_namespace("team-a-both", 1, "team-a", nul=False)
    await in_namespace("team-a-redis-only", 2, "team-a", nul=True)
    await in_namespace("team-b-redis-only", 3, "team-b", nul=True)
    assert await exact.get("team-a-redis-only") is not None

    flushed = await CacheAdmin(exact, entries, no_embed).handle(FlushEntries(tenant=tenant, namespace="team-a"))

    assert isinstance(flushed, EntriesDeleted)
    assert flushed.deleted == 2 and sorted(flushed.keys) == ["team-a-both", "team-a-redis-only"]
    assert await exact.get("team-a-both") is None and await exact.get("team-a-redis-only") is None
    assert await exact.get("team-b-redis-only") is not None  # another namespace: untouched
    note = exact._redis_only(tenant, "team-b")
    assert 3590 < await exact._redis.ttl(note) <= 3601  # lives as long as its entries

    await CacheAdmin(exact, entries, no_embed).handle(FlushEntries(tenant=tenant))
    assert await exact.get("team-b-redis-only") is None and not await exact._redis.exists(note)


async def test_a_catalogue_from_before_the_turns_column_is_upgraded_and_a_restart_does_not_wait_on_readers(
    tmp_path: Path,
) -> None:
    server = start_embedded_postgres(tmp_path / "data", cleanup_mode="delete")
    pool = await open_pool(server.get_uri(), min_size=1, max_size=3, name="test-upgrade")
    try:
        entries = EntryStore(pool, ef_search=40)
        await entries.ensure_schema()
        async with pool.connection() as conn:
            await conn.execute("ALTER TABLE cache_entries DROP COLUMN turns")  # as an older version made it
        await entries.ensure_schema()
        async with pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT 1 FROM information_schema.columns WHERE table_name = 'cache_entries' AND column_name = 'turns'"
            )
            assert await cursor.fetchone() is not None

        # A long read holds the table; another replica starting must not queue an exclusive lock behind it
        # (every lookup would then queue behind that lock).
        async with pool.connection() as reader, reader.transaction():
            await reader.execute("SELECT count(*) FROM cache_entries")
            await asyncio.wait_for(entries.ensure_schema(), timeout=5)
        # Nor behind an open write (CREATE INDEX IF NOT EXISTS locks the table before it looks), nor does
        # a new worker's first lookup, once the vector table exists.
        await entries.nearest("p", vector(1), None)
        async with pool.connection() as writer, writer.transaction():
            await writer.execute("DELETE FROM cache_entries WHERE tenant = 'nobody'")
            await asyncio.wait_for(entries.ensure_schema(), timeout=5)
            await asyncio.wait_for(EntryStore(pool, ef_search=40).nearest("p", vector(1), None), timeout=5)
    finally:
        await pool.close()
        server.cleanup()


async def test_a_single_flight_is_a_lease_its_waiters_outlive(stores: tuple[ExactStore, EntryStore]) -> None:
    """Lead, follow, renew, store (waiters handed over), and a lapsed lease's waiters taken over once."""
    from services.cache_worker.exact_store import FOLLOWING, LEADING, OURS, STORED

    exact, entries = stores
    tenant = f"t-{uuid.uuid4().hex[:6]}"
    assert await exact.lead_flight("k1", "leader", 0.5) == LEADING
    assert await exact.lead_flight("k1", "leader", 0.5) == OURS  # its own lookup, redelivered
    assert await exact.lead_flight("k1", "other", 0.5) == FOLLOWING
    assert await exact.follow_flight("k1", b"w1", 30) and await exact.follow_flight("k1", b"w2", 30)
    assert await exact.renew_flight("k1", "leader", 0.5) and not await exact.renew_flight("k1", "other", 0.5)

    storer = Storer(exact, entries, default_ttl_seconds=3600, max_entries=10)
    answered: list[list[str]] = []

    async def answer(_: CachedAnswer, waiters: list) -> None:  # type: ignore[type-arg]
        answered.append([waiter for waiter in waiters])

    # Waiters that can't be read are dropped, the list is emptied once they are answered.
    await storer.store(generated(tenant, "k1", 1), answer)
    assert answered == [[]]  # b"w1", b"w2" are not Waiters: dropped (logged)
    assert await exact.follow_flight("k1", b"late", 30) is False  # no flight any more: the answer is stored
    assert await exact.lead_flight("k1", "next", 0.5) == STORED
    assert await exact.lead_flight("k1", "next", 0.5, even_if_stored=True) == LEADING  # too old for it

    # A leader that stops renewing: its waiters are taken over by one sweep, once.
    assert await exact.lead_flight("k2", "dead", 0.3) == LEADING
    assert await exact.follow_flight("k2", b"w", 30)
    assert await exact.lapsed_flights() == []
    await asyncio.sleep(0.4)
    assert await exact.lapsed_flights() == [("k2", [b"w"])]
    assert await exact.lapsed_flights() == []
    await exact.put_back_waiters("k2", [b"w"], 30)  # resending it failed: the next sweep takes it again
    assert await exact.lapsed_flights() == [("k2", [b"w"])]
    # A flight that ends without an answer hands its waiters over, unless another leader holds it now.
    assert await exact.lead_flight("k3", "first", 5) == LEADING
    assert await exact.follow_flight("k3", b"w3", 30)
    assert await exact.end_flight("k3", "someone-else") == []
    assert await exact.end_flight("k3", "first") == [b"w3"]
    await exact.waiters_done("k3", 1)
    assert await exact.lead_flight("k3", "again", 5) == LEADING and await exact.end_flight("k3", "again") == []


def flight_request(name: str, body: dict[str, object]) -> CompletionRequest:
    now = time.time()
    controls = CacheControls(mode="exact")
    return CompletionRequest(
        request_id=name, tenant="t", received_at=now, deadline=now + 30, body=body, controls=controls
    )


async def test_a_leader_still_queued_for_the_llm_worker_keeps_its_flight(stores: tuple[ExactStore, EntryStore]) -> None:
    """The LLM worker renews a leader's lease only once it picks its request up: while the request waits in the
    queue (a backlog longer than the lease), no follower takes over and calls the upstream a second time."""
    exact, entries = stores
    lookup = Lookup(exact, entries, no_embed, LookupPolicy(0.9, 1.0, flight_lease_seconds=0.3))
    route = ReplyRoute("gateway", "c")
    body = {"model": "m", "messages": [{"role": "user", "content": f"q {uuid.uuid4().hex}"}]}
    leader = flight_request("leader", body)
    leading = await lookup.run(leader, route)
    assert isinstance(leading, Miss) and leading.lookup.flight_leader
    key = leading.lookup.exact_key
    assert key is not None and leading.lookup.flight_lease_seconds == 0.3  # what the LLM worker renews by
    await lookup.leader_queued(leader.model_copy(update={"lookup": leading.lookup}))  # the broker took it
    assert isinstance(await lookup.run(flight_request("f1", body), route), Following)
    await asyncio.sleep(0.5)  # longer than the lease: the leader's request is still queued
    assert await exact.lapsed_flights() == []
    assert isinstance(await lookup.run(flight_request("f2", body), route), Following)

    # Picked up: from now on the lease is the short one its worker renews; a worker that dies lets it lapse.
    assert await exact.renew_flight(key, "leader", 0.3)
    await asyncio.sleep(0.5)
    assert [k for k, _ in await exact.lapsed_flights()] == [key]


async def test_a_leader_lost_on_its_way_keeps_the_short_lease(stores: tuple[ExactStore, EntryStore]) -> None:
    """Until the broker confirmed the leader's request, its lease is the short one: lost on its way, its
    followers take over within seconds."""
    exact, entries = stores
    lookup = Lookup(exact, entries, no_embed, LookupPolicy(0.9, 1.0, flight_lease_seconds=0.3))
    body = {"model": "m", "messages": [{"role": "user", "content": f"q {uuid.uuid4().hex}"}]}
    leading = await lookup.run(flight_request("leader", body), ReplyRoute("gateway", "c"))
    assert isinstance(leading, Miss) and leading.lookup.exact_key is not None
    assert isinstance(await lookup.run(flight_request("f1", body), ReplyRoute("gateway", "d")), Following)
    await asyncio.sleep(0.5)
    assert [k for k, _ in await exact.lapsed_flights()] == [leading.lookup.exact_key]


async def test_waiters_a_storer_never_handed_over_are_the_sweepers(stores: tuple[ExactStore, EntryStore]) -> None:
    """Storing an answer (or ending a flight) ends the flight and hands its waiters to the storer: should it never
    answer them (the reply of Redis lost, the storer dead), the sweeper takes them over instead of nobody."""
    stored, _ = stores
    exact = ExactStore(stored._redis, stored._prefix, hand_over_seconds=0.3)
    tenant = f"t-{uuid.uuid4().hex[:6]}"
    for key, end in (("k-stored", False), ("k-ended", True)):
        assert await exact.lead_flight(key, "leader", 30) == LEADING
        assert await exact.follow_flight(key, b"w", 30)
        if end:
            assert await exact.end_flight(key, "leader") == [b"w"]  # and never released
        else:
            answer = CachedAnswer("e", key, "m", {"choices": []}, time.time())
            assert await exact.put(tenant, answer, 60) == [b"w"]  # and never answered
    assert await exact.lapsed_flights() == []  # the storer has a moment to hand them over
    await asyncio.sleep(0.5)
    assert sorted(await exact.lapsed_flights()) == [("k-ended", [b"w"]), ("k-stored", [b"w"])]

    # Handed over: nothing left for the sweeper.
    assert await exact.lead_flight("k-done", "leader", 30) == LEADING
    assert await exact.follow_flight("k-done", b"w", 30)
    assert await exact.end_flight("k-done", "leader") == [b"w"]
    await exact.waiters_done("k-done", 1)
    await asyncio.sleep(0.5)
    assert await exact.lapsed_flights() == []


async def test_the_store_context_kept_at_the_lookup_gives_the_entry_its_vector(
    stores: tuple[ExactStore, EntryStore],
) -> None:
    """The store event names only the exact key: the prompt, partition and vector come from what the lookup
    kept under it, which is forgotten once PostgreSQL has the entry. Without one the entry is exact-only."""
    exact, entries = stores
    tenant, partition = f"t-{uuid.uuid4().hex[:6]}", f"p-{uuid.uuid4().hex[:6]}"
    storer = Storer(exact, entries, default_ttl_seconds=3600, max_entries=10)
    pending = PendingStore(
        partition_key=partition,
        prompt_text="how do I reset my password?",
        embedding=vector(5),
        embedding_model="e",
        context_text="user: hi",
        turns=[["user", "hi"]],
    )
    await exact.keep_pending("semantic", pending.to_bytes(), 60)
    await storer.store(generated(tenant, "semantic", 5))

    [found] = await entries.nearest(partition, vector(5), None)
    assert found.answer.exact_key == "semantic" and found.similarity == pytest.approx(1.0, abs=1e-5)
    assert (found.prompt_text, found.turns) == ("how do I reset my password?", [("user", "hi")])
    row = await entries.find(tenant, "semantic")
    assert row is not None and row["context_text"] == "user: hi"
    assert await exact.pending("semantic") is None

    await storer.store(generated(tenant, "exact-only", 6))
    row = await entries.find(tenant, "exact-only")
    assert row is not None and row["prompt"] is None  # catalogued, served exactly, never a candidate
    assert await exact.get("exact-only") is not None
