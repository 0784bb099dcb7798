"""`make run`'s checks before it starts anything: a clear sentence instead of a stack that half starts."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from scripts.stack import ROOT, check_dependencies

RABBITMQ_URL = os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def test_wrong_broker_credentials_are_refused_before_anything_starts() -> None:
    assert check_dependencies(RABBITMQ_URL, REDIS_URL) == []
    wrong = RABBITMQ_URL.replace("guest:guest@", "guest:not-the-password@")
    (problem,) = check_dependencies(wrong, REDIS_URL)
    assert problem.startswith("RabbitMQ at") and "refused the login" in problem and "ACCESS_REFUSED" in problem


def test_a_second_make_run_on_a_taken_port_stops_with_a_sentence() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "GATEWAY_PORT": str(port), "RABBITMQ_URL": RABBITMQ_URL, "REDIS_URL": REDIS_URL}
        done = subprocess.run(
            [sys.executable, "-m", "scripts.run"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
        )
    assert done.returncode == 1
    assert f"Something already listens on 127.0.0.1:{port} (another `make run`?)" in done.stderr
