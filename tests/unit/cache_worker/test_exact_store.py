"""The exact store against the local Redis (127.0.0.1:6379, a unique key prefix per test, tests/unit/conftest.py):
what an answer is stored under and for how long, the per-tenant LRU order the cap evicts by, which entries a
tenant may delete, the notes that let a flush find what only Redis holds, and the hand-over of a flight's
waiters. Its Lua scripts are the logic here: a fake Redis would test the fake. The MGET batcher's failure is
tested with a fake local_redis (no Redis needed). The single-flight lease itself (lead, follow, renew, lapse) is in
tests/integration/test_cache_store.py."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
import redis.asyncio as redis

from services.cache_worker.entries import CachedAnswer
from services.cache_worker.exact_store import LEADING, STORED, ExactStore


@pytest.fixture
def exact(local_redis: redis.Redis, redis_prefix: str) -> ExactStore:
    return ExactStore(local_redis, redis_prefix)


def answer(key: str, content: str = "Paris.") -> CachedAnswer:
    completion = {"choices": [{"message": {"content": content}}], "usage": {"total_tokens": 7}}
    return CachedAnswer(str(uuid.uuid4()), key, "gpt-4o-mini", completion, 1_700_000_000.0, upstream="openai")


async def lru(local_redis: redis.Redis, redis_prefix: str, tenant: str) -> list[str]:
    """The tenant's keys, least recently used first."""
    return [member.decode() for member in await local_redis.zrange(f"{redis_prefix}:lru:{tenant}", 0, -1)]


async def test_an_answer_is_stored_under_its_exact_key_for_its_ttl_and_listed_as_the_tenants(
    exact: ExactStore, local_redis: redis.Redis, redis_prefix: str
) -> None:
    stored = answer("k1")
    assert await exact.put("acme", stored, 120) == []  # nobody waited on its flight
    assert await exact.get("k1") == stored
    assert await exact.get("missing") is None
    # The layout operators and the integration tests read: <prefix>:exact:<key>, with the entry's TTL.
    assert 110 < await local_redis.ttl(f"{redis_prefix}:exact:k1") <= 120
    assert await lru(local_redis, redis_prefix, "acme") == ["k1"]
    assert await exact.owns("acme", "k1") and not await exact.owns("other", "k1")


async def test_a_batch_of_answers_is_stored_in_one_go_each_with_the_ttl(
    exact: ExactStore, local_redis: redis.Redis, redis_prefix: str
) -> None:
    answers = [answer(f"e{i}", str(i)) for i in range(3)]
    await exact.put_many("acme", answers, 60)
    assert await asyncio.gather(*(exact.get(f"e{i}") for i in range(3))) == answers
    assert all([0 < await local_redis.ttl(f"{redis_prefix}:exact:e{i}") <= 60 for i in range(3)])
    assert sorted(await lru(local_redis, redis_prefix, "acme")) == ["e0", "e1", "e2"]


async def test_deleting_counts_what_redis_still_held_and_another_tenant_cannot_delete_by_key(
    exact: ExactStore, local_redis: redis.Redis, redis_prefix: str
) -> None:
    for key in ("k1", "k2"):
        await exact.put("acme", answer(key), 60)
    assert await exact.delete("acme", ["k1", "gone"]) == 1
    assert await exact.get("k1") is None and await lru(local_redis, redis_prefix, "acme") == ["k2"]
    assert await exact.delete("acme", []) == 0

    assert await exact.delete_tenants("intruder", "k2") == 0  # a key alone does not say whose it is
    assert await exact.get("k2") is not None
    assert await exact.delete_tenants("acme", "k2") == 1
    assert await exact.get("k2") is None and await lru(local_redis, redis_prefix, "acme") == []


async def test_the_cap_takes_the_least_recently_used_and_only_tracked_keys_are_moved_up(
    exact: ExactStore, local_redis: redis.Redis, redis_prefix: str
) -> None:
    for key in ("k0", "k1", "k2", "k3"):
        await exact.put("acme", answer(key), 60)
    now = time.time()
    # k0 used since; "expired" (no longer tracked: its entry expired) must not come back into the order.
    await exact.touch({"acme": {"k0": now + 10, "expired": now + 10}})
    assert await lru(local_redis, redis_prefix, "acme") == ["k1", "k2", "k3", "k0"]
    assert await exact.over_cap("acme", 2) == ["k1", "k2"]
    assert await lru(local_redis, redis_prefix, "acme") == ["k3", "k0"]
    assert await exact.over_cap("acme", 2) == [] and await exact.over_cap("nobody", 0) == []

    await exact.forget("acme", ["k3"])
    assert await lru(local_redis, redis_prefix, "acme") == ["k0"]


async def test_a_namespace_flush_deletes_what_only_redis_holds_there_and_the_note_lives_as_long_as_its_entries(
    exact: ExactStore, local_redis: redis.Redis, redis_prefix: str
) -> None:
    for key in ("a1", "a2", "b1"):
        await exact.put("acme", answer(key), 3600)
    await exact.mark_redis_only("acme", "team-a", ["a2"], 3600)
    await exact.mark_redis_only("acme", "team-a", "a1", 600)  # noted last, lives shorter
    await exact.mark_redis_only("acme", "team-b", "b1", 3600)
    assert 3590 < await local_redis.ttl(f"{redis_prefix}:redis_only:acme:team-a") <= 3601  # the longest-lived entry's

    await local_redis.delete(f"{redis_prefix}:exact:a2")  # expired meanwhile: not counted as deleted
    assert await exact.delete_redis_only("acme", "team-a") == ["a1"]
    assert await exact.get("a1") is None and await exact.get("b1") is not None
    assert await lru(local_redis, redis_prefix, "acme") == ["b1"]
    assert not await local_redis.exists(f"{redis_prefix}:redis_only:acme:team-a")


async def test_a_tenant_flush_deletes_every_entry_redis_holds_for_it_and_no_other_tenants(
    exact: ExactStore, local_redis: redis.Redis, redis_prefix: str
) -> None:
    await exact.put("acme", answer("mine"), 60)
    await exact.put("acme-2", answer("theirs"), 60)  # a name that starts like it
    await exact.mark_redis_only("acme", "default", "mine", 60)
    await exact.mark_redis_only("acme-2", "default", "theirs", 60)

    assert await exact.delete_tenant("acme") == ["mine"]
    assert await exact.get("mine") is None and not await local_redis.exists(f"{redis_prefix}:redis_only:acme:default")
    assert await exact.get("theirs") is not None and await local_redis.exists(
        f"{redis_prefix}:redis_only:acme-2:default"
    )
    assert await exact.delete_redis_only("acme-2", "default") == ["theirs"]  # its note was left alone


async def test_storing_ends_the_flight_and_hands_its_waiters_over(exact: ExactStore) -> None:
    assert await exact.lead_flight("k", "leader", 30) == LEADING
    assert await exact.follow_flight("k", b"w1", 30) and await exact.follow_flight("k", b"w2", 30)
    assert await exact.put("acme", answer("k"), 60) == [b"w1", b"w2"]
    assert await exact.follow_flight("k", b"late", 30) is False  # no flight: the late one finds the answer
    assert await exact.lead_flight("k", "next", 30) == STORED


async def test_only_the_waiters_handed_over_are_taken_off_and_one_noted_meanwhile_stays(exact: ExactStore) -> None:
    assert await exact.lead_flight("k", "first", 30) == LEADING
    assert await exact.follow_flight("k", b"w1", 30)
    assert await exact.end_flight("k", "first") == [b"w1"]
    # Before the storer is done sending w1 upstream, another request leads and w2 waits on it.
    assert await exact.lead_flight("k", "second", 30) == LEADING
    assert await exact.follow_flight("k", b"w2", 30)
    await exact.waiters_done("k", 1)
    assert await exact.put("acme", answer("k"), 60) == [b"w2"]  # w1 is not answered twice, w2 not lost


class FailingMget:
    """A local_redis whose MGET fails once (the connection dropped), then answers."""

    def __init__(self) -> None:
        self.failures = 1

    def register_script(self, script: str) -> Any:
        return None

    async def mget(self, names: list[str]) -> list[bytes | None]:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("Redis gone")
        return [answer("k").to_bytes() if name.endswith(":exact:k") else None for name in names]


async def test_a_failed_batched_read_fails_every_lookup_in_the_batch_and_the_next_batch_reads_afresh() -> None:
    exact = ExactStore(FailingMget(), "p")  # type: ignore[arg-type]
    failed = await asyncio.wait_for(asyncio.gather(exact.get("k"), exact.get("other"), return_exceptions=True), 5)
    assert [type(outcome) for outcome in failed] == [ConnectionError, ConnectionError]  # none left hanging
    found, missing = await asyncio.wait_for(asyncio.gather(exact.get("k"), exact.get("other")), 5)
    assert found is not None and found.exact_key == "k" and missing is None


async def test_ping_says_false_when_redis_is_down() -> None:
    down = redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    try:
        assert await ExactStore(down, "p").ping() is False
    finally:
        await down.aclose()
