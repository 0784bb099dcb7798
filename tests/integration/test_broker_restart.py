"""RabbitMQ restarted under a running system: requests fail fast with 503 and Retry-After while it
is down, and afterwards everything works again without restarting a service. A private RabbitMQ node
of this test's own (scripts/private_nodes.py, as `make run` starts one), so restarting it touches
nothing else."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from scripts.private_nodes import RabbitNode, find_program
from scripts.stack import start_embedded_postgres
from tests.conftest import wait_until
from tests.integration.stack import SERVICES, Stack, build_stack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, RabbitNode]]:
    if find_program("rabbitmq-server") is None:
        pytest.fail("rabbitmq-server is needed to restart a broker in a test")
    tmp = Path(tmp_path_factory.mktemp("broker"))
    node = RabbitNode(tmp / "rabbitmq")
    node.start()
    postgres = start_embedded_postgres(tmp / "postgres", cleanup_mode="delete")
    urls = {"RABBITMQ_URL": node.url, "REDIS_URL": "redis://127.0.0.1:6379/0", "DATABASE_URL": postgres.get_uri()}
    stack = build_stack(urls, tmp)
    try:
        for name in SERVICES:
            stack.start(name)
        stack.wait_ready()
        yield stack, node
    finally:
        stack.stop_all()
        node.stop()
        postgres.cleanup()


def ask(stack: Stack, question: str) -> httpx.Response:
    return httpx.post(
        f"{stack.base_url}/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": question}]},
        headers=stack.auth,
        timeout=30,
    )


def test_a_broker_restart_fails_fast_then_recovers_by_itself(system: tuple[Stack, RabbitNode]) -> None:
    stack, node = system
    assert ask(stack, f"Before the restart {uuid.uuid4().hex}").status_code == 200
    node.stop()
    try:
        started = time.monotonic()
        during = ask(stack, f"During the outage {uuid.uuid4().hex}")
        took = time.monotonic() - started
        assert during.status_code == 503, during.text
        assert during.headers.get("retry-after")
        assert during.json()["error"]["message"]
        assert took < 5, f"failing took {took:.1f}s: fail fast"
    finally:
        node.start()
    # Every service reconnects by itself: no restart, the same processes.
    pids = {name: process.pid for name, process in stack.processes.items()}
    back = time.monotonic()
    wait_until(lambda: ask(stack, f"After the restart {uuid.uuid4().hex}").status_code == 200, timeout=60, interval=1)
    print(
        f"\nbroker down: 503 in {took * 1000:.0f} ms; answering again {time.monotonic() - back:.1f} s after it was back"
    )
    assert all(stack.processes[name].poll() is None and stack.processes[name].pid == pid for name, pid in pids.items())
    wait_until(lambda: httpx.get(f"{stack.base_url}/status", timeout=10).status_code == 200, timeout=60, interval=1)
