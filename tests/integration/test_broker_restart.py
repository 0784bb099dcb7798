"""RabbitMQ restarted under a running system: requests fail fast with 503 and Retry-After while it
is down, and afterwards everything works again without restarting a service. A RabbitMQ node of
this test's own (port, data and node name), so restarting it touches nothing else."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from scripts.stack import start_embedded_postgres
from tests.conftest import wait_until
from tests.integration.stack import SERVICES, Stack, build_stack, free_port

pytestmark = pytest.mark.integration


class RabbitNode:
    """A private RabbitMQ node (Debian's rabbitmq-server), started and stopped on demand."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = free_port()
        self.name = f"lcptest{uuid.uuid4().hex[:6]}@localhost"
        self.process: subprocess.Popen[bytes] | None = None
        base.mkdir(parents=True, exist_ok=True)
        (base / "plugins").write_text("[].\n")
        (base / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{self.port}\n")
        shutil.chown(base, "rabbitmq", "rabbitmq")
        for path in base.iterdir():
            shutil.chown(path, "rabbitmq", "rabbitmq")

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def start(self) -> None:
        env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": str(self.base),
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_DIST_PORT": str(free_port()),
            "RABBITMQ_CONFIG_FILE": str(self.base / "rabbitmq"),
            "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.base / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base / "plugins"),
            "RABBITMQ_FEATURE_FLAGS_FILE": str(self.base / "feature_flags"),
        }
        with open(self.base / "server.out", "ab") as out:
            self.process = subprocess.Popen(["rabbitmq-server"], env=env, stdout=out, stderr=out)
        wait_until(lambda: _open(self.port), timeout=60, interval=0.5)

    def stop(self) -> None:
        subprocess.run(["rabbitmqctl", "-n", self.name, "shutdown"], capture_output=True, timeout=60, check=False)
        if self.process is not None:
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
            self.process = None


def _open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, RabbitNode]]:
    if shutil.which("rabbitmq-server") is None:
        pytest.fail("rabbitmq-server is needed to restart a broker in a test")
    tmp = Path(tmp_path_factory.mktemp("broker"))
    node = RabbitNode(Path("/tmp") / f"lcp-rabbit-{uuid.uuid4().hex[:8]}")  # a path the rabbitmq user can reach
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
        shutil.rmtree(node.base, ignore_errors=True)


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
