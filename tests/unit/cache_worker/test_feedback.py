"""The reported-pair check against a Redis that accepts connections and never answers: the candidates are
refused within the check's own short timeout (the request goes upstream), and PostgreSQL is not asked."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as redis

from services.cache_worker.entries import CachedAnswer
from services.cache_worker.entry_store import Candidate
from services.cache_worker.feedback import ReportedPairs


class NoPool:
    def connection(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("PostgreSQL was asked")


@pytest.fixture
async def hung_redis() -> AsyncIterator[redis.Redis]:
    """A server that takes the connection and the commands, and never replies."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = redis.Redis(host="127.0.0.1", port=port)
    try:
        yield client
    finally:
        for writer in held:
            writer.close()
        server.close()
        await client.aclose()


def candidate(key: str) -> Candidate:
    return Candidate(CachedAnswer(entry_id="e", exact_key=key, model="m", completion={}, created_at=0.0), 0.9)


async def test_a_hung_redis_refuses_the_candidates_at_once(
    hung_redis: redis.Redis, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    timeout, bounds = asyncio.timeout, []

    def recorded(delay: float | None) -> Any:
        bounds.append(delay)
        return timeout(delay)

    monkeypatch.setattr(asyncio, "timeout", recorded)
    reported = ReportedPairs(NoPool(), hung_redis, "test", check_timeout_seconds=0.1)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="services.cache_worker.feedback"):
        kept, reasons = await asyncio.wait_for(  # a guard only: nothing else would end the wait
            reported.drop_reported("acme", "question", None, [candidate("a"), candidate("b")]), 5
        )
    assert (kept, reasons) == ([], ["reported_check_failed"] * 2)
    # The check's own timeout bounded the wait and ended it (not the client's, not the guard), and PostgreSQL
    # was not asked after it (NoPool): the request goes upstream now.
    assert 0.1 in bounds
    assert any("no answer within 0.1 s" in record.getMessage() for record in caplog.records)
