"""The storer with fake stores: what a generated answer is stored as in Redis and PostgreSQL (key, TTL, id,
and the vector the lookup kept under its key), who waiting on its single flight is answered, and what each
store's failure does: Redis's is logged and counted and never fails the event; PostgreSQL's is retried, or
(a value it refuses) kept in Redis only."""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import orjson
import psycopg
import pytest
from prometheus_client import REGISTRY

from services.cache_worker.entries import CachedAnswer, PendingStore
from services.cache_worker.entry_store import NewEntry
from services.cache_worker.flights import Waiter
from services.cache_worker.storing import Storer
from shared.contracts.completions import CompletionRequest
from shared.contracts.store_events import CompletionGenerated, FlightEnded
from shared.worker import Retryable

EVENT_ID = uuid.UUID(int=42).hex
KEPT = PendingStore(
    partition_key="partition-1",
    prompt_text="What is the capital of France?",
    embedding=[1.0, 0.0],
    embedding_model="event-model",
)


class FakeExact:
    """The exact store's calls the storer makes, recorded; `fail` names the calls that raise."""

    def __init__(
        self, waiting: list[bytes] | None = None, over_cap: list[str] | None = None, kept: PendingStore | None = KEPT
    ) -> None:
        self.kept = {"key-1": kept.to_bytes()} if kept is not None else {}
        self.waiting = waiting or []
        self.evictable = over_cap or []
        self.fail: set[str] = set()
        self.puts: list[tuple[str, CachedAnswer, int]] = []
        self.done: list[tuple[str, int]] = []
        self.redis_only: list[tuple[str, str, str, int]] = []
        self.caps: list[tuple[str, int]] = []
        self.deleted: list[tuple[str, list[str]]] = []
        self.ended: list[tuple[str, str | None]] = []

    def _call(self, name: str) -> None:
        if name in self.fail:
            raise ConnectionError(f"Redis gone ({name})")

    async def put(self, tenant: str, answer: CachedAnswer, ttl_seconds: int) -> list[bytes]:
        self._call("put")
        self.puts.append((tenant, answer, ttl_seconds))
        return self.waiting

    async def pending(self, key: str) -> bytes | None:
        self._call("pending")
        return self.kept.get(key)

    async def forget_pending(self, key: str) -> None:
        self.kept.pop(key, None)

    async def waiters_done(self, key: str, count: int) -> None:
        self.done.append((key, count))

    async def mark_redis_only(self, tenant: str, namespace: str, key: str, ttl_seconds: int) -> None:
        self._call("mark_redis_only")
        self.redis_only.append((tenant, namespace, key, ttl_seconds))

    async def over_cap(self, tenant: str, cap: int) -> list[str]:
        self._call("over_cap")
        self.caps.append((tenant, cap))
        return self.evictable

    async def delete(self, tenant: str, keys: list[str]) -> int:
        self.deleted.append((tenant, keys))
        return len(keys)

    async def end_flight(self, key: str, request_id: str | None = None) -> list[bytes]:
        self._call("end_flight")
        self.ended.append((key, request_id))
        return self.waiting


class FakeEntries:
    """PostgreSQL's side: records entries, or raises `fail`."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.fail = fail
        self.entries: list[NewEntry] = []
        self.deleted: list[tuple[str, list[str]]] = []

    async def put(self, entry: NewEntry) -> None:
        if self.fail is not None:
            raise self.fail
        self.entries.append(entry)

    async def delete_keys(self, tenant: str, keys: list[str]) -> int:
        self.deleted.append((tenant, keys))
        return len(keys)


def storer(exact: FakeExact, entries: FakeEntries, max_entries: int = 100) -> Storer:
    return Storer(exact, entries, default_ttl_seconds=3600, max_entries=max_entries)  # type: ignore[arg-type]


def generated(**fields: Any) -> CompletionGenerated:
    values: dict[str, Any] = {
        "event_id": EVENT_ID,
        "tenant": "acme",
        "namespace": "team-a",
        "model": "gpt-4o-mini",
        "exact_key": "key-1",
        "completion": {"choices": [{"message": {"content": "Paris."}}], "usage": {"total_tokens": 9}},
        "upstream": "openai",
        "created_at": 1_700_000_000.0,
    }
    return CompletionGenerated(**{**values, **fields})


def waiter(request_id: str) -> bytes:
    now = time.time()
    request = CompletionRequest(request_id=request_id, tenant="acme", received_at=now, deadline=now + 30, body={})
    return Waiter(request=request, reply_to="gateway", correlation_id=request_id).model_dump_json().encode()


def counted(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def stores(store: str, outcome: str) -> float:
    return counted("llmcache_cache_stores_total", store=store, outcome=outcome)


def degraded(operation: str) -> float:
    return counted("llmcache_cache_dependency_failures_total", dependency="redis", operation=operation)


async def test_an_answer_is_stored_in_both_stores_under_its_key_for_its_ttl_or_the_default() -> None:
    exact, entries = FakeExact(), FakeEntries()
    await storer(exact, entries).store(generated(ttl_seconds=120))

    [(tenant, answer, ttl)] = exact.puts
    assert (tenant, answer.exact_key, ttl) == ("acme", "key-1", 120)
    assert (answer.model, answer.upstream, answer.created_at) == ("gpt-4o-mini", "openai", 1_700_000_000.0)
    assert answer.completion["choices"][0]["message"]["content"] == "Paris."
    [entry] = entries.entries
    assert entry.answer == answer  # one entry, one id in both stores
    assert (entry.tenant, entry.namespace, entry.ttl_seconds) == ("acme", "team-a", 120)
    assert (entry.partition_key, entry.prompt_text) == ("partition-1", "What is the capital of France?")
    assert (entry.embedding, entry.embedding_model) == ([1.0, 0.0], "event-model")
    assert exact.kept == {}  # forgotten once PostgreSQL has the entry

    exact, entries = FakeExact(), FakeEntries()
    await storer(exact, entries).store(generated(ttl_seconds=None))  # none of its own: the default
    assert exact.puts[0][2] == 3600 and entries.entries[0].ttl_seconds == 3600


async def test_the_entry_id_comes_from_the_event_so_a_redelivered_event_stores_the_same_entry() -> None:
    first, again = FakeEntries(), FakeEntries()
    await storer(FakeExact(), first).store(generated())
    await storer(FakeExact(), again).store(generated())
    assert first.entries[0].answer.entry_id == again.entries[0].answer.entry_id == str(uuid.UUID(int=42))

    exact, other = FakeExact(), FakeEntries()
    await storer(exact, other).store(generated(event_id="not-a-uuid"))
    entry_id = other.entries[0].answer.entry_id
    assert uuid.UUID(entry_id) and exact.puts[0][1].entry_id == entry_id  # a fresh id, the same in both stores


async def test_a_redis_failure_is_logged_and_counted_and_the_entry_still_reaches_postgres(
    caplog: pytest.LogCaptureFixture,
) -> None:
    exact, entries = FakeExact(), FakeEntries()
    exact.fail.add("put")
    before = (stores("redis", "error"), degraded("store"), stores("postgres", "ok"))
    with caplog.at_level(logging.WARNING, logger="services.cache_worker.storing"):
        await storer(exact, entries).store(generated())
    assert [entry.answer.exact_key for entry in entries.entries] == ["key-1"]
    assert (stores("redis", "error"), degraded("store"), stores("postgres", "ok")) == tuple(b + 1 for b in before)
    assert any("storing in Redis failed" in record.getMessage() for record in caplog.records)


async def test_the_requests_waiting_on_its_flight_are_answered_but_the_leader_then_taken_off_the_list() -> None:
    exact, entries = FakeExact(waiting=[waiter("leader"), waiter("w1"), b"unreadable", waiter("w2")]), FakeEntries()
    answered: list[tuple[str, list[str]]] = []

    async def answer_waiters(answer: CachedAnswer, waiters: list[Waiter]) -> None:
        answered.append((answer.exact_key, [w.request.request_id for w in waiters]))

    await storer(exact, entries).store(generated(flight_id="leader"), answer_waiters)
    # The leader got its own answer from the LLM worker; an unreadable note is dropped, not the others.
    assert answered == [("key-1", ["w1", "w2"])]
    assert exact.done == [("key-1", 4)]  # every one noted, taken off once answered


async def test_waiters_that_could_not_be_answered_stay_noted_and_the_event_is_redone() -> None:
    exact, entries = FakeExact(waiting=[waiter("w1")]), FakeEntries()

    async def broker_down(answer: CachedAnswer, waiters: list[Waiter]) -> None:
        raise Retryable("answering a waiter failed")

    with pytest.raises(Retryable):
        await storer(exact, entries).store(generated(), broker_down)
    assert exact.done == []  # the redone event answers them


async def test_without_a_kept_store_context_the_entry_is_exact_only() -> None:
    entries = FakeEntries()
    await storer(FakeExact(kept=None), entries).store(generated())  # not semantic, or its context expired
    [entry] = entries.entries
    assert entry.answer.exact_key == "key-1" and entry.embedding is None  # never a semantic candidate
    assert (entry.partition_key, entry.prompt_text, entry.context_text) == (None, None, None)

    exact, entries = FakeExact(), FakeEntries()
    exact.fail.add("pending")
    before = degraded("pending_store")
    await storer(exact, entries).store(generated())  # Redis failed reading it: still stored, exact-only
    assert entries.entries[0].embedding is None and degraded("pending_store") == before + 1


async def test_nul_bytes_are_taken_out_of_the_conversation_postgres_keeps() -> None:
    entries = FakeEntries()
    kept = PendingStore(
        **{
            **KEPT.__dict__,
            "context_text": "user: a\x00b\nassistant: c",
            "turns": [["user", "a\x00b"], ["assistant", "\x00"]],
        }
    )
    await storer(FakeExact(kept=kept), entries).store(generated())
    assert entries.entries[0].context_text == "user: ab\nassistant: c"
    assert entries.entries[0].turns == [["user", "ab"], ["assistant", ""]]


async def test_an_entry_postgres_refuses_is_kept_in_redis_only_and_not_retried() -> None:
    exact, entries = FakeExact(), FakeEntries(fail=psycopg.DataError("invalid byte sequence"))
    before = stores("postgres", "unstorable")
    await storer(exact, entries).store(generated(ttl_seconds=300))  # no exception: the event is done
    assert [answer.exact_key for _, answer, _ in exact.puts] == ["key-1"]  # served from Redis
    assert exact.redis_only == [("acme", "team-a", "key-1", 300)]  # a namespace flush finds it
    assert stores("postgres", "unstorable") == before + 1
    assert exact.kept == {}  # nothing will retry it: its store context goes too


async def test_postgres_down_is_retried_and_meanwhile_the_entry_is_noted_redis_only() -> None:
    exact, entries = FakeExact(), FakeEntries(fail=psycopg.OperationalError("connection refused"))
    before = stores("postgres", "error")
    with pytest.raises(Retryable):
        await storer(exact, entries).store(generated(ttl_seconds=300))
    assert exact.redis_only == [("acme", "team-a", "key-1", 300)]
    assert "key-1" in exact.kept  # the retried event finds the vector still there
    assert stores("postgres", "error") == before + 1

    with pytest.raises(RuntimeError):  # anything else is no outage: retried once, then dead-lettered
        await storer(FakeExact(), FakeEntries(fail=RuntimeError("bug"))).store(generated())


async def test_a_failure_noting_a_redis_only_entry_does_not_fail_the_event() -> None:
    exact, entries = FakeExact(), FakeEntries(fail=psycopg.DataError("invalid byte sequence"))
    exact.fail.add("mark_redis_only")
    before = degraded("store")
    await storer(exact, entries).store(generated())
    assert degraded("store") == before + 1


async def test_the_tenants_least_recently_used_entries_beyond_its_cap_leave_both_stores() -> None:
    exact, entries = FakeExact(over_cap=["old-1", "old-2"]), FakeEntries()
    before = counted("llmcache_cache_evicted_entries_total")
    await storer(exact, entries, max_entries=10).store(generated())
    assert exact.caps == [("acme", 10)]
    assert exact.deleted == entries.deleted == [("acme", ["old-1", "old-2"])]
    assert counted("llmcache_cache_evicted_entries_total") == before + 2


async def test_a_failure_enforcing_the_cap_is_logged_and_counted_never_raised() -> None:
    exact, entries = FakeExact(), FakeEntries()
    exact.fail.add("over_cap")
    before = degraded("evict")
    await storer(exact, entries).store(generated())
    assert len(entries.entries) == 1 and degraded("evict") == before + 1


async def test_a_flight_that_stored_nothing_sends_its_waiters_on_but_not_its_leader() -> None:
    exact = FakeExact(waiting=[waiter("w1"), waiter("leader")])
    released: list[list[str]] = []

    async def release(waiters: list[Waiter]) -> None:
        released.append([w.request.request_id for w in waiters])

    ended = FlightEnded(tenant="acme", exact_key="key-1", reason="upstream_error", flight_id="leader")
    await storer(exact, FakeEntries()).end_flight(ended, release)
    assert exact.ended == [("key-1", "leader")]  # only its own flight: one taken over is left alone
    assert released == [["w1"]] and exact.done == [("key-1", 2)]


async def test_redis_down_when_a_flight_ends_leaves_the_waiters_to_the_lapsing_lease() -> None:
    exact = FakeExact()
    exact.fail.add("end_flight")
    before = degraded("single_flight")

    async def release(waiters: list[Waiter]) -> None:
        raise AssertionError("nothing to release")

    ended = FlightEnded(tenant="acme", exact_key="key-1", reason="upstream_error", flight_id="leader")
    await storer(exact, FakeEntries()).end_flight(ended, release)
    assert degraded("single_flight") == before + 1 and exact.done == []


def test_a_store_context_kept_before_the_aligned_match_is_still_read() -> None:
    """A rolling upgrade: the lookup of an older worker kept `user_turns`, which no longer exists."""
    older = orjson.loads(KEPT.to_bytes())
    older.pop("turns")
    older["user_turns"] = ["hi"]
    kept = PendingStore.from_bytes(orjson.dumps(older))
    assert (kept.prompt_text, kept.turns) == (KEPT.prompt_text, None)
