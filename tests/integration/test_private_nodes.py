"""The private RabbitMQ and Redis nodes `make run` starts when none is running: they answer, stop without
leaving a process behind, and a restart in the same folder finds the data of the previous run. The
machine's own RabbitMQ and Redis are not touched (other ports, other folders, another epmd)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import aio_pika
import pytest
import redis

from scripts.private_nodes import PrivateNode, RabbitNode, RedisNode, find_program
from scripts.stack import reachable

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def servers_installed() -> None:
    for program in ("rabbitmq-server", "redis-server"):
        if find_program(program) is None:
            pytest.fail(f"{program} is needed to start a private node in a test")


def processes_mentioning(text: str) -> list[str]:
    """Command lines of running processes that contain `text` (a node's folder: beam.smp's arguments name it)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            command = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # gone meanwhile
        if text in command:
            found.append(command)
    return found


def assert_stopped(node: PrivateNode, pids: list[int]) -> None:
    assert node.pids == []
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert not any(reachable("127.0.0.1", port) for port in node.ports.values())
    assert processes_mentioning(str(node.data_dir)) == []


def test_a_private_redis_node_keeps_its_data_across_restarts(tmp_path: Path) -> None:
    node = RedisNode(tmp_path / "redis")
    node.start()
    try:
        assert node.port not in (6379, 5672)
        with redis.Redis.from_url(node.url) as client:
            assert client.ping()
            client.set("written-before", "still here")
            assert client.config_get("bind") == {"bind": "127.0.0.1"}
        pids = node.pids
    finally:
        node.stop()
    assert_stopped(node, pids)
    assert (tmp_path / "redis" / "appendonlydir").is_dir()

    again = RedisNode(tmp_path / "redis")
    again.start()
    try:
        assert again.url == node.url  # the same port, remembered in the folder
        with redis.Redis.from_url(again.url) as client:
            assert client.get("written-before") == b"still here"
    finally:
        again.stop()


async def declare_and_count(url: str, queue: str, publish: bool) -> int:
    """Messages waiting in a durable queue (declared if missing), after publishing one persistent message."""
    connection = await aio_pika.connect(url, timeout=10)
    async with connection:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, durable=True)
        if publish:
            message = aio_pika.Message(b"kept", delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
            await channel.default_exchange.publish(message, routing_key=queue)
            declared = await channel.declare_queue(queue, durable=True)
        return declared.declaration_result.message_count or 0


def test_a_private_rabbitmq_node_keeps_its_queues_across_restarts(tmp_path: Path) -> None:
    node = RabbitNode(tmp_path / "rabbitmq")
    node.start()
    try:
        assert node.port not in (5672, 6379) and node.ports["epmd"] != 4369
        assert asyncio.run(declare_and_count(node.url, "kept-across-restarts", publish=True)) == 1
        pids = node.pids
        assert len(pids) == 2  # epmd, rabbitmq-server
    finally:
        node.stop()
    assert_stopped(node, pids)
    assert (tmp_path / "rabbitmq" / "mnesia" / RabbitNode.NODE_NAME).is_dir()

    again = RabbitNode(tmp_path / "rabbitmq")
    again.start()
    try:
        assert again.url == node.url
        assert asyncio.run(declare_and_count(again.url, "kept-across-restarts", publish=False)) == 1
        pids = again.pids
    finally:
        again.stop()
    assert_stopped(again, pids)
