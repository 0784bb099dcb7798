"""The worker runtime on the real broker: poison messages are dead-lettered with a reason, and an RPC
caller whose request can't be read gets an error at once instead of waiting out its timeout."""

from __future__ import annotations

import asyncio
import time
import uuid

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage

from shared.contracts.embedder import EmbedRequest, EmbedResult
from shared.rpc import RemoteError
from shared.settings import BaseServiceSettings
from shared.worker import Worker

pytestmark = pytest.mark.integration


@pytest.fixture
async def worker():  # type: ignore[no-untyped-def]
    settings = BaseServiceSettings(broker_prefix=f"test-rt-{uuid.uuid4().hex[:8]}", shutdown_grace_seconds=2)
    running = Worker("embedder", settings)
    await running.start()
    yield running
    await running.close()
    connection = await aio_pika.connect(settings.rabbitmq_url.get_secret_value())
    async with connection:
        channel = await connection.channel()
        for queue in running.topology.all_queues():
            await channel.queue_delete(queue)
        for exchange in running.topology.all_exchanges():
            await channel.exchange_delete(exchange)


async def next_dead_letter(worker: Worker, timeout: float = 5.0) -> AbstractIncomingMessage:
    """The next message on the dead-letter queue (acked), or fail after `timeout`."""
    dead = await worker.events_channel.get_queue(worker.topology.dead_letters)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = await dead.get(fail=False)
        if message is not None:
            await message.ack()
            return message
        await asyncio.sleep(0.05)
    pytest.fail("nothing was dead-lettered")


async def test_an_unreadable_rpc_request_is_answered_with_an_error_and_dead_lettered(worker: Worker) -> None:
    handled: list[bytes] = []

    async def handler(message: AbstractIncomingMessage) -> None:
        EmbedRequest.model_validate_json(message.body)  # raises on anything but a valid request
        handled.append(message.body)

    await worker.consume(worker.topology.embed_rpc, handler, prefetch=4)
    with pytest.raises(RemoteError) as raised:  # answered: not an RpcTimeout after waiting out its 10 s
        # An empty text list violates the contract.
        await worker.rpc.call(worker.topology.embed_rpc, EmbedRequest.model_construct(texts=[]), EmbedResult, 10)
    assert raised.value.error.status == 400
    assert handled == []

    message = await next_dead_letter(worker)
    assert message.headers["x-original-queue"] == worker.topology.embed_rpc
    assert str(message.headers["x-dead-letter-reason"]).startswith("unreadable")


async def test_a_failing_handler_is_retried_once_then_dead_lettered(worker: Worker) -> None:
    attempts: list[bool] = []

    async def handler(message: AbstractIncomingMessage) -> None:
        attempts.append(message.redelivered)
        raise RuntimeError("boom")

    await worker.consume(worker.topology.cache_store, handler, prefetch=1)
    await worker.exchange.publish(
        aio_pika.Message(b'{"v": 1}', delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
        routing_key=worker.topology.cache_store,
    )
    message = await next_dead_letter(worker)
    assert attempts == [False, True]
    assert str(message.headers["x-dead-letter-reason"]).startswith("failed twice")


async def test_expired_requests_do_not_fill_the_dead_letter_queue(worker: Worker) -> None:
    await worker.rpc.send(worker.topology.llm_request, b"{}", "c1", timeout=0.05)
    await asyncio.sleep(0.3)
    queue = await worker.events_channel.get_queue(worker.topology.llm_request)
    assert await queue.get(fail=False) is None  # expired
    dead = await worker.events_channel.get_queue(worker.topology.dead_letters)
    assert await dead.get(fail=False) is None


async def test_coalesced_acks_never_ack_a_message_still_in_hand(worker: Worker) -> None:
    """Fast messages finish around a slow one and are acked together; if the worker dies, only the
    slow one comes back."""
    release = asyncio.Event()
    fast_ones_done = asyncio.Event()
    handled: list[bytes] = []

    async def handler(message: AbstractIncomingMessage) -> None:
        if message.body == b"slow" and not message.redelivered:
            await release.wait()
        handled.append(message.body)
        if len(handled) == 39:
            fast_ones_done.set()

    # A second worker on the same queues, which dies below (the fixture's worker closes normally).
    dying = Worker("cache_worker", worker.settings)
    await dying.start()
    await dying.consume(worker.topology.cache_store, handler, prefetch=50)
    bodies = [b"fast"] * 10 + [b"slow"] + [b"fast"] * 29
    for body in bodies:
        await worker.exchange.publish(aio_pika.Message(body), routing_key=worker.topology.cache_store)
    await asyncio.wait_for(fast_ones_done.wait(), 5)
    await asyncio.sleep(0.2)  # the acks are out

    # The worker dies with the slow message in hand: the broker must give back exactly that one.
    assert dying.connection is not None
    await dying.connection.close()
    connection = await aio_pika.connect(worker.settings.rabbitmq_url.get_secret_value())
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(worker.topology.cache_store, passive=True)
        left: list[bytes] = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            message = await queue.get(fail=False)
            if message is None:
                if left:
                    break
                await asyncio.sleep(0.05)
                continue
            left.append(message.body)
            await message.ack()
    assert left == [b"slow"]
    release.set()


async def test_a_worker_whose_connection_is_gone_still_shuts_down(worker: Worker) -> None:
    gone = Worker("cache_worker", worker.settings)
    await gone.start()

    async def handler(message: AbstractIncomingMessage) -> None:
        return None

    await gone.consume(worker.topology.cache_store, handler, prefetch=4)
    assert gone.connection is not None
    await gone.connection.close()
    await asyncio.wait_for(gone.close(), 10)  # it used to wait for the broker forever
