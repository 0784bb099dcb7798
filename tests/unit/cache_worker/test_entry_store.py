"""The entry store with a scripted connection pool (no PostgreSQL: the queries themselves run in
tests/integration/test_cache_store.py): what a lookup may wait for, what the rows come back as, what an entry
is written as, which entries a filter names (its text literally, values always as parameters), and what is
never asked of the database."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import numpy as np
from psycopg.types.json import Jsonb

from services.cache_worker.entries import CachedAnswer
from services.cache_worker.entry_store import EntryFilter, EntryStore, NewEntry

ENTRY_ID = uuid.UUID(int=7)
CREATED = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@dataclass
class Statement:
    sql: str
    params: Any
    transaction: bool  # run inside a transaction


class FakeCursor:
    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self.rows = rows
        self.rowcount = len(rows)

    async def fetchone(self) -> tuple[Any, ...] | None:
        return self.rows[0] if self.rows else None

    async def fetchall(self) -> list[tuple[Any, ...]]:
        return self.rows


@dataclass
class ScriptedPool:
    """A pool whose one connection records each statement and answers the first scripted rows whose SQL
    fragment the statement holds (none: no rows). Records the timeout each connection was asked with."""

    answers: list[tuple[str, list[tuple[Any, ...]]]] = field(default_factory=list)
    statements: list[Statement] = field(default_factory=list)
    timeouts: list[float | None] = field(default_factory=list)
    in_transaction: bool = False

    @asynccontextmanager
    async def connection(self, timeout: float | None = None) -> AsyncIterator[ScriptedPool]:
        self.timeouts.append(timeout)
        yield self

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        self.in_transaction = True
        try:
            yield
        finally:
            self.in_transaction = False

    async def execute(self, sql: str, params: Any = None, binary: bool = False) -> FakeCursor:
        self.statements.append(Statement(sql, params, self.in_transaction))
        return FakeCursor(next((rows for fragment, rows in self.answers if fragment in sql), []))

    def sql(self, fragment: str) -> list[Statement]:
        return [s for s in self.statements if fragment in s.sql]


class NoPool:
    """A pool the call must never reach."""

    def connection(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the database was asked")


def summary_row(**fields: Any) -> tuple[Any, ...]:
    values = {
        "id": ENTRY_ID,
        "key": "key-1",
        "tenant": "acme",
        "namespace": "default",
        "model": "gpt-4o-mini",
        "prompt": "What is the capital of France?",
        "created": CREATED,
        "expires": CREATED + timedelta(hours=1),
        "hits": 3,
        "last_hit": None,
    }
    return tuple({**values, **fields}.values())


async def test_a_lookup_waits_for_a_connection_and_its_query_no_longer_than_its_timeout() -> None:
    pool = ScriptedPool()
    entries = EntryStore(pool, ef_search=64, lookup_timeout_seconds=0.25)  # type: ignore[arg-type]
    assert await entries.nearest("partition", [1.0, 0.0, 0.0], None) == []
    assert pool.timeouts == [0.25, 0.25]  # the vector table's check, then the search: fail-open past them
    [settings] = pool.sql("set_config('statement_timeout'")
    assert settings.params == ("64", "250ms") and settings.transaction
    assert settings.sql.count(", true)") == 4  # SET LOCAL, all four: the pooled connection's next user is unaffected


async def test_the_nearest_come_back_as_candidates_with_what_the_verifier_reads() -> None:
    stored = SimpleNamespace(to_numpy=lambda: np.array([0.6, 0.8], dtype=np.float32))
    completion = {"choices": [{"message": {"content": "Paris."}}]}
    row = (ENTRY_ID, "key-1", "m", completion, "openai", CREATED, "capital of France?", [["user", "hi"]], 0.93, stored)
    pool = ScriptedPool(answers=[("WITH near", [row])])
    entries = EntryStore(pool, ef_search=40)  # type: ignore[arg-type]

    [found] = await entries.nearest("partition", [0.6, 0.8], None, limit=3)
    assert found.answer == CachedAnswer(str(ENTRY_ID), "key-1", "m", completion, CREATED.timestamp(), "openai")
    assert (found.similarity, found.prompt_text, found.turns) == (0.93, "capital of France?", [("user", "hi")])
    assert found.embedding is not None and list(found.embedding) == [np.float32(0.6), np.float32(0.8)]
    [search] = pool.sql("WITH near")
    assert "cache_vectors_d2" in search.sql and "expires_at > now()" in search.sql  # live entries only
    assert (search.params["p"], search.params["limit"], search.params["min_created"]) == ("partition", 3, None)

    earliest = datetime.now(UTC) - timedelta(seconds=600)
    await entries.nearest("partition", [0.6, 0.8], max_age_seconds=600)
    latest = datetime.now(UTC) - timedelta(seconds=600)
    assert earliest <= pool.sql("WITH near")[-1].params["min_created"] <= latest


async def test_a_vector_table_is_made_once_per_dimension_and_named_after_it() -> None:
    pool = ScriptedPool()
    entries = EntryStore(pool, ef_search=40)  # type: ignore[arg-type]
    for dim in (3, 3, 5):
        await entries.nearest("p", [1.0] * dim, None)
    made = [s.sql for s in pool.sql("CREATE TABLE IF NOT EXISTS")]
    assert len(made) == 2 and "cache_vectors_d3 (" in made[0] and "cache_vectors_d5 (" in made[1]
    assert "vector(3)" in made[0] and "vector(5)" in made[1]


def new_entry(**fields: Any) -> NewEntry:
    answer = CachedAnswer(str(ENTRY_ID), "key-1", "m", {"choices": []}, CREATED.timestamp(), "openai")
    values: dict[str, Any] = {
        "answer": answer,
        "tenant": "acme",
        "namespace": "team-a",
        "ttl_seconds": 600,
        "prompt_text": "What is the capital of France?",
        "partition_key": "partition",
        "embedding_model": "e",
        "embedding": [0.6, 0.8],
        "context_text": "user: hi",
        "turns": [["user", "hi"]],
    }
    return NewEntry(**{**values, **fields})


async def test_an_entry_replaces_the_one_under_its_key_and_expires_its_ttl_after_it_was_made() -> None:
    pool = ScriptedPool()
    await EntryStore(pool, ef_search=40).put(new_entry())  # type: ignore[arg-type]
    writes = [s for s in pool.statements if s.sql.lstrip().startswith(("DELETE", "INSERT"))]
    assert [s.sql.split()[0:3] for s in writes] == [
        ["DELETE", "FROM", "cache_entries"],
        ["INSERT", "INTO", "cache_entries"],
        ["INSERT", "INTO", "cache_vectors_d2"],
    ]
    assert all(s.transaction for s in writes)  # one entry, replaced whole or not at all
    assert writes[0].params == ("key-1",)
    row = writes[1].params
    assert row[:8] == (ENTRY_ID, "acme", "team-a", "m", "key-1", "partition", "e", 2)
    assert row[8:10] == ("What is the capital of France?", "user: hi")
    assert isinstance(row[10], Jsonb) and row[10].obj == [["user", "hi"]] and row[11].obj == {"choices": []}
    assert (row[13], row[14] - row[13]) == (CREATED, timedelta(seconds=600))
    vector_id, partition, expires, created, embedding = writes[2].params
    assert (vector_id, partition, expires, created) == (ENTRY_ID, "partition", row[14], CREATED)
    assert embedding.dtype == np.float32 and embedding.tolist() == [np.float32(0.6), np.float32(0.8)]


async def test_an_entry_without_a_partition_is_never_a_semantic_candidate() -> None:
    pool = ScriptedPool()
    await EntryStore(pool, ef_search=40).put(new_entry(partition_key=None, turns=None))  # type: ignore[arg-type]
    assert pool.sql("cache_vectors_d") == []  # no vector table, no vector row
    [insert] = pool.sql("INSERT INTO cache_entries")
    assert insert.params[5] is None and insert.params[10] is None


async def test_a_filter_always_names_the_tenant_and_its_text_is_matched_literally() -> None:
    pool = ScriptedPool(answers=[("count(*)", [(2,)]), ("ORDER BY created_at", [summary_row(), summary_row()])])
    where = EntryFilter(tenant="acme", namespace="x'; DROP TABLE cache_entries; --", text="50%_off\\")
    rows, total = await EntryStore(pool, ef_search=40).page(where, limit=10, offset=20)  # type: ignore[arg-type]

    assert total == 2 and len(rows) == 2
    assert rows[0] == {
        "id": str(ENTRY_ID),
        "key": "key-1",
        "tenant": "acme",
        "namespace": "default",
        "model": "gpt-4o-mini",
        "prompt": "What is the capital of France?",
        "created_at": CREATED.timestamp(),
        "expires_at": CREATED.timestamp() + 3600,
        "hit_count": 3,
        "last_hit_at": None,
    }
    count, listing = pool.statements
    for statement in (count, listing):
        assert "tenant = %(tenant)s" in statement.sql and "prompt_text ILIKE %(text)s" in statement.sql
        assert "DROP TABLE" not in statement.sql  # values travel as parameters only
    # % and _ are no wildcards here, \ no escape: the text is found as typed, anywhere in the prompt.
    assert listing.params["text"] == "%50\\%\\_off\\\\%"
    assert (listing.params["tenant"], listing.params["limit"], listing.params["offset"]) == ("acme", 10, 20)


async def test_an_entry_is_found_by_its_id_or_its_key_and_comes_with_its_completion() -> None:
    detail = (*summary_row(last_hit=CREATED), "user: hi", {"choices": []})
    pool = ScriptedPool(answers=[("SELECT", [detail])])
    entries = EntryStore(pool, ef_search=40)  # type: ignore[arg-type]

    found = await entries.find("acme", str(ENTRY_ID))
    assert found is not None and found["completion"] == {"choices": []} and found["context_text"] == "user: hi"
    assert found["last_hit_at"] == CREATED.timestamp()
    await entries.find("acme", "key-1")
    by_id, by_key = pool.statements
    assert "AND id = %s" in by_id.sql and by_id.params == ("acme", ENTRY_ID)
    assert "AND exact_key = %s" in by_key.sql and by_key.params == ("acme", "key-1")

    assert await EntryStore(ScriptedPool(), ef_search=40).find("acme", "missing") is None  # type: ignore[arg-type]


async def test_only_one_sweeper_deletes_expired_entries_at_a_time() -> None:
    busy = ScriptedPool(answers=[("pg_try_advisory_xact_lock", [(False,)])])
    assert await EntryStore(busy, ef_search=40).sweep_expired(100) == []  # type: ignore[arg-type]
    assert busy.sql("DELETE") == []

    free = ScriptedPool(answers=[("pg_try_advisory_xact_lock", [(True,)]), ("DELETE", [("acme", "key-1")])])
    assert await EntryStore(free, ef_search=40).sweep_expired(100) == [("acme", "key-1")]  # type: ignore[arg-type]
    [delete] = free.sql("DELETE")
    assert delete.params == (100,) and delete.transaction  # the lock lasts as long as the delete


async def test_hits_are_recorded_in_one_statement_and_nothing_to_do_never_asks_the_database() -> None:
    idle = EntryStore(NoPool(), ef_search=40)  # type: ignore[arg-type]
    await idle.record_hits({})
    assert await idle.delete_keys("acme", []) == 0

    pool = ScriptedPool()
    await EntryStore(pool, ef_search=40).record_hits({"k1": (2, 100.0), "k2": (1, 50.0)})  # type: ignore[arg-type]
    [update] = pool.statements
    keys, counts, times = update.params
    assert sorted(zip(keys, counts, times, strict=True)) == [("k1", 2, 100.0), ("k2", 1, 50.0)]


async def test_ids_of_a_preview_that_are_no_ids_match_nothing_rather_than_fail() -> None:
    pool = ScriptedPool(answers=[("RETURNING exact_key", [("key-1",)])])
    entries = EntryStore(pool, ef_search=40)  # type: ignore[arg-type]
    deleted = await entries.delete_near(EntryFilter(tenant="acme"), [0.6, 0.8], 0.9, [str(ENTRY_ID), "not-an-id"])
    assert deleted == ["key-1"]
    [delete] = pool.sql("DELETE FROM cache_entries")
    assert "e.id = ANY(%(ids)s)" in delete.sql and "e.tenant = %(tenant)s" in delete.sql
    assert delete.params["ids"] == [ENTRY_ID, None] and delete.params["min_similarity"] == 0.9
