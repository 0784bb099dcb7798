"""make run's choice for RabbitMQ and Redis (the user's, the default one, a private node, or a message), and
the bookkeeping of private nodes: remembered ports, leftovers of a killed run. No real server here."""

from __future__ import annotations

import fcntl
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from scripts import private_nodes
from scripts.private_nodes import (
    INSTALL_HINT,
    RABBITMQ,
    REDIS,
    NodeError,
    RedisNode,
    plan,
    remembered_ports,
    stop_leftovers,
)


def answering(*ports: int):  # type: ignore[no-untyped-def]
    return lambda host, port: host == "127.0.0.1" and port in ports


def installed(*programs: str):  # type: ignore[no-untyped-def]
    return lambda program: program in programs


def test_the_urls_the_user_set_are_used_as_they_are_even_when_nothing_answers() -> None:
    env = {"RABBITMQ_URL": "amqp://u:p@broker:5999/", "REDIS_URL": "redis://cache:7000/1"}
    result = plan(env, answers=answering(), is_installed=installed("rabbitmq-server", "redis-server"))
    assert result.use == env
    assert result.start == [] and result.problems == []


def test_servers_answering_on_the_default_ports_are_used() -> None:
    result = plan({}, answers=answering(5672, 6379), is_installed=installed())
    assert result.use == {"RABBITMQ_URL": RABBITMQ.default_url, "REDIS_URL": REDIS.default_url}
    assert result.start == [] and result.problems == []


def test_an_installed_server_that_does_not_answer_gets_a_private_node() -> None:
    result = plan({"RABBITMQ_URL": ""}, answers=answering(6379), is_installed=installed("rabbitmq-server"))
    assert result.start == [RABBITMQ]
    assert result.use == {"REDIS_URL": REDIS.default_url}
    assert result.problems == []
    both = plan({}, answers=answering(), is_installed=installed("rabbitmq-server", "redis-server"))
    assert both.start == [RABBITMQ, REDIS] and both.use == {}


def test_a_server_neither_answering_nor_installed_is_a_message_saying_how_to_install_it() -> None:
    result = plan({}, answers=answering(5672), is_installed=installed("rabbitmq-server"))
    assert result.start == [] and result.use == {"RABBITMQ_URL": RABBITMQ.default_url}
    problem, hint = result.problems
    assert problem.startswith("Redis is not reachable at 127.0.0.1:6379, and redis-server is not installed")
    assert "REDIS_URL" in problem
    assert hint == INSTALL_HINT
    for line in (
        "apt-get install rabbitmq-server redis-server",
        "brew install rabbitmq redis",
        "dnf install rabbitmq-server redis",
        "docker compose -f deploy/docker-compose.yml up",
    ):
        assert line in hint


def test_the_install_hint_comes_once_when_both_are_missing() -> None:
    result = plan({}, answers=answering(), is_installed=installed())
    assert [p.split(" ")[0] for p in result.problems] == ["RabbitMQ", "Redis", "Install"]


def test_ports_are_remembered_and_a_taken_one_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "ports.json"
    first = remembered_ports(path, ("amqp", "distribution", "epmd"))
    assert len(set(first.values())) == 3 and not {5672, 6379} & set(first.values())
    assert remembered_ports(path, ("amqp", "distribution", "epmd")) == first
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", first["amqp"]))
        taken.listen()
        second = remembered_ports(path, ("amqp", "distribution", "epmd"))
    assert second["amqp"] != first["amqp"]
    assert (second["distribution"], second["epmd"]) == (first["distribution"], first["epmd"])
    assert json.loads(path.read_text()) == second


def test_an_unreadable_ports_file_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "ports.json"
    path.write_text("{not json")
    ports = remembered_ports(path, ("redis",))
    assert json.loads(path.read_text()) == ports


def sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)


def test_leftovers_of_a_killed_run_are_stopped_but_not_a_process_that_got_a_listed_pid(tmp_path: Path) -> None:
    left, other = sleeper(), sleeper()
    try:
        (tmp_path / "processes").write_text(f"{left.pid} python\n{other.pid} redis-server\n")
        assert stop_leftovers(tmp_path) == [f"python (pid {left.pid})"]
        assert left.wait(5) is not None
        assert other.poll() is None  # its command is not redis-server: not ours
        assert not (tmp_path / "processes").exists()
        assert stop_leftovers(tmp_path) == []
    finally:
        for process in (left, other):
            process.kill()
            process.wait()


def test_make_clean_stops_leftovers_of_both_nodes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(private_nodes, "ROOT", tmp_path)
    left = sleeper()
    try:
        (tmp_path / ".data" / "redis").mkdir(parents=True)
        (tmp_path / ".data" / "redis" / "processes").write_text(f"{left.pid} python\n")
        assert private_nodes.main(["stop"]) == 0
        assert left.wait(5) is not None
        assert private_nodes.main([]) == 2
    finally:
        left.kill()
        left.wait()


def test_a_node_whose_folder_another_run_holds_does_not_start_nor_touch_that_runs_listing(tmp_path: Path) -> None:
    folder = tmp_path / "redis"
    folder.mkdir()
    (folder / "processes").write_text("12345 redis-server\n")
    with open(folder / "lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        node = RedisNode(folder)
        with pytest.raises(NodeError, match="Another `make run` runs the private Redis node"):
            node.start()
        node.stop()  # as make run's `finally` does
    assert (folder / "processes").read_text() == "12345 redis-server\n"
