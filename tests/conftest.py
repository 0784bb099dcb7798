"""Fixtures of the tests that need the running system: one whole stack per test session, on real services
(shared by tests/integration and tests/deploy; unit tests never start it)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import psycopg
import pytest
import redis

from tests.integration.otlp import TraceReceiver, trace_receiver
from tests.integration.stack import SERVICES, Stack, build_stack, dependencies


@pytest.fixture(scope="session")
def traces() -> Iterator[tuple[TraceReceiver, str]]:
    """Where the stack's services export their spans (the whole suite runs with tracing on)."""
    with trace_receiver() as receiver_and_endpoint:
        yield receiver_and_endpoint


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, traces: tuple[TraceReceiver, str]) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("stack")
    with dependencies(tmp) as urls:
        system = build_stack(urls, tmp, traces_endpoint=traces[1])
        try:
            for name in SERVICES:
                system.start(name)
            system.wait_ready()
            yield system
        finally:
            system.stop_all()
            system.clean_up()


@pytest.fixture(scope="session")
def client(stack: Stack) -> Iterator[openai.OpenAI]:
    """The official SDK, pointed at the proxy as a user would (closed at the end: an open socket left at exit
    is an unraisable ResourceWarning, which fails the run when one file runs alone)."""
    with openai.OpenAI(base_url=f"{stack.base_url}/v1", api_key=stack.env["DEV_API_KEY"], max_retries=0) as sdk:
        yield sdk


@pytest.fixture(scope="session")
def mock(stack: Stack) -> MockUpstream:
    return MockUpstream(stack.mock_url)


@pytest.fixture(scope="session")
def redis_client(stack: Stack) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(stack.env["REDIS_URL"])
    yield client
    client.close()


class MockUpstream:
    """The mock upstream's test controls: call counts and injected faults."""

    def __init__(self, url: str) -> None:
        self.url = url

    def stats(self) -> dict[str, Any]:
        return httpx.get(f"{self.url}/_mock/stats").json()

    def chat_calls(self) -> int:
        return int(self.stats()["chat_calls"])

    def fail(self, status: int, count: int = -1, **spec: Any) -> None:
        httpx.post(f"{self.url}/_mock/faults", json={"status": status, "count": count, **spec}).raise_for_status()

    def clear_faults(self) -> None:
        httpx.delete(f"{self.url}/_mock/faults").raise_for_status()


def wait_until(predicate: Any, timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Poll until `predicate()` is truthy; return its value or fail the test."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"condition not met within {timeout}s")


@pytest.fixture
def stored(stack: Stack, redis_client: redis.Redis):  # type: ignore[no-untyped-def]
    """Wait until an answer is in both stores (storing is asynchronous, after the reply)."""

    def wait(key: str, semantic: bool = True) -> None:
        redis_key = f"{stack.env['REDIS_PREFIX']}:exact:{key}"
        wait_until(lambda: redis_client.exists(redis_key))
        if semantic:

            def in_postgres() -> bool:
                with psycopg.connect(stack.env["DATABASE_URL"]) as conn:
                    row = conn.execute(
                        "SELECT count(*) FROM cache_entries e JOIN cache_vectors_d384 v ON v.entry_id = e.id"
                        " WHERE e.exact_key = %s",
                        (key,),
                    ).fetchone()
                    return bool(row and row[0])

            wait_until(in_postgres)

    return wait
