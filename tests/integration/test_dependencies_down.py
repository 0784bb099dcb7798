"""Redis or PostgreSQL down: the proxy keeps answering from the upstream (X-Cache: BYPASS with the
reason), the exact cache keeps working without PostgreSQL, no usage event is lost, and everything
recovers by itself when the dependency is back. A system of its own, with its own Redis server and
PostgreSQL, so stopping them touches nothing else."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from scripts.stack import start_embedded_postgres
from tests.conftest import wait_until
from tests.integration.stack import SERVICES, Stack, build_stack, free_port

pytestmark = pytest.mark.integration

MODEL = "gpt-4o-mini"


class RedisServer:
    """A redis-server of this test's own, on a port that stays the same across restarts."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is needed to take Redis down in a test")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        wait_until(lambda: _pings(self.url), timeout=10)

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


def _pings(url: str) -> bool:
    try:
        client = redis.Redis.from_url(url)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except redis.RedisError:
        return False


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, RedisServer, Any]]:
    tmp = Path(tmp_path_factory.mktemp("down"))
    redis_server = RedisServer()
    redis_server.start()
    postgres = start_embedded_postgres(tmp / "postgres", cleanup_mode="delete")
    urls = {
        "RABBITMQ_URL": "amqp://guest:guest@127.0.0.1:5672/",
        "REDIS_URL": redis_server.url,
        "DATABASE_URL": postgres.get_uri(),
    }
    stack = build_stack(urls, tmp)
    stack.env["KEY_CACHE_TTL_SECONDS"] = "1"
    try:
        for name in SERVICES:
            stack.start(name)
        stack.wait_ready()
        yield stack, redis_server, postgres
    finally:
        stack.stop_all()
        redis_server.stop()
        redis_server.start()  # for the clean-up's sake
        stack.clean_up()
        redis_server.stop()
        postgres.cleanup()


def ask(stack: Stack, question: str) -> httpx.Response:
    response = httpx.post(
        f"{stack.base_url}/v1/chat/completions",
        json={"model": MODEL, "messages": [{"role": "user", "content": question}]},
        headers=stack.auth,
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response


def unique(text: str) -> str:
    return f"{text} {uuid.uuid4().hex[:6]}"


def stored_in_redis(stack: Stack, key: str) -> bool:
    return _exists(stack.env["REDIS_URL"], f"{stack.env['REDIS_PREFIX']}:exact:{key}")


def _exists(url: str, key: str) -> bool:
    client = redis.Redis.from_url(url)
    try:
        return bool(client.exists(key))
    finally:
        client.close()


def usage_count(stack: Stack) -> int:
    return int(httpx.get(f"{stack.base_url}/api/v1/cache/stats", headers=stack.auth, timeout=10).json()["requests"])


def settled_usage_count(stack: Stack, timeout: float = 20) -> int:
    """The usage count once earlier requests' events have all landed (it stops changing)."""
    deadline = time.monotonic() + timeout
    previous = usage_count(stack)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        current = usage_count(stack)
        if current == previous:
            return current
        previous = current
    pytest.fail("the usage count did not settle")


def test_redis_down_answers_from_the_upstream_then_recovers(system: tuple[Stack, RedisServer, Any]) -> None:
    stack, redis_server, _ = system
    redis_server.stop()
    try:
        started = time.monotonic()
        answered = ask(stack, unique("How tall is Mount Everest?"))
        print(f"\nRedis down: a miss answered (BYPASS) in {time.monotonic() - started:.2f} s")
        assert answered.headers["x-cache"] == "BYPASS"
        assert answered.headers["x-cache-bypass-reason"] == "redis_unavailable"
        metrics = httpx.get(f"http://127.0.0.1:{stack.metrics_ports['cache_worker']}/metrics").text
        assert 'llmcache_cache_dependency_failures_total{dependency="redis",operation="lookup"}' in metrics
    finally:
        redis_server.start()
    question = unique("How deep is the Mariana Trench?")
    first = wait_until(lambda: (r := ask(stack, question)).headers["x-cache"] == "MISS" and r, timeout=15)
    wait_until(lambda: stored_in_redis(stack, first.headers["x-cache-key"]), timeout=10)
    again = ask(stack, question)
    assert (again.headers["x-cache"], again.headers["x-cache-match"]) == ("HIT", "exact")


def test_postgres_down_keeps_exact_hits_and_loses_no_usage(system: tuple[Stack, RedisServer, Any]) -> None:
    stack, _, postgres = system
    from embedded_postgres._commands import pg_ctl

    before = settled_usage_count(stack)
    question = unique("What is the capital of Canada?")
    first = ask(stack, question)
    wait_until(lambda: stored_in_redis(stack, first.headers["x-cache-key"]), timeout=10)

    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=postgres.pgdata, user=postgres.system_user)
    try:
        time.sleep(1.5)  # past the key cache's TTL: keys can't be checked now (stale-if-error serves them)
        started = time.monotonic()
        hit = ask(stack, question)
        took_hit = time.monotonic() - started
        assert (hit.headers["x-cache"], hit.headers["x-cache-match"]) == ("HIT", "exact")
        started = time.monotonic()
        miss = ask(stack, unique("What is the capital of Australia?"))
        print(
            f"\nPostgreSQL down: an exact hit in {took_hit:.2f} s, a miss (BYPASS) in {time.monotonic() - started:.2f}s"
        )
        assert miss.headers["x-cache"] == "BYPASS"
        assert miss.headers["x-cache-bypass-reason"] == "postgres_unavailable"
    finally:
        postgres.ensure_postgres_running()
    # The usage events of the outage were held, not dropped: all three requests are counted.
    wait_until(lambda: usage_count(stack) == before + 3, timeout=30)
    # And the semantic cache is back without restarting anything.
    tag = uuid.uuid4().hex[:6]
    stored = ask(stack, f"What is the boiling point of water at sea level? ({tag})")
    assert stored.headers["x-cache"] in ("MISS", "BYPASS")
    wait_until(
        lambda: ask(stack, f"What is water's boiling point at sea level? ({tag})").headers["x-cache"] == "HIT",
        timeout=30,
        interval=1,
    )
