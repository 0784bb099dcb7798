"""RPC over RabbitMQ: one exclusive reply queue per process, replies routed by correlation id.

A request may be answered by one reply (embeddings, stats, health) or by a sequence of replies
(a streamed completion); either way the caller reads from its own asyncio queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import Iterator
from typing import TypeVar

import orjson
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from pydantic import BaseModel

from shared.broker import publish_transient
from shared.contracts.base import ErrorInfo

ResultT = TypeVar("ResultT", bound=BaseModel)


class RemoteError(Exception):
    """An error reply from another service, carried as data."""

    def __init__(self, error: ErrorInfo) -> None:
        super().__init__(error.message)
        self.error = error


class RpcTimeout(Exception):
    """Nobody answered within the deadline."""


class ReplyInbox:
    """This process's exclusive reply queue; hands each reply to the caller waiting on its correlation id."""

    def __init__(self, prefix: str, service: str) -> None:
        self.name = f"{prefix}.reply.{service}.{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
        self._waiting: dict[str, asyncio.Queue[bytes]] = {}

    async def start(self, channel: AbstractChannel) -> None:
        queue = await channel.declare_queue(self.name, exclusive=True, auto_delete=True)
        # no_ack: replies are transient; a lost reply surfaces as the caller's timeout.
        await queue.consume(self._on_reply, no_ack=True)

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        waiting = self._waiting.get(message.correlation_id or "")
        if waiting is not None:
            waiting.put_nowait(message.body)

    def open(self, correlation_id: str) -> asyncio.Queue[bytes]:
        """Register for the replies to one request (for callers whose wait outlives one scope, like a stream)."""
        replies: asyncio.Queue[bytes] = asyncio.Queue()
        self._waiting[correlation_id] = replies
        return replies

    def close(self, correlation_id: str) -> None:
        """Stop routing replies for a request; late replies are dropped."""
        self._waiting.pop(correlation_id, None)

    @contextlib.contextmanager
    def expect(self, correlation_id: str) -> Iterator[asyncio.Queue[bytes]]:
        """Register for the replies to one request; unregister when the caller is done."""
        try:
            yield self.open(correlation_id)
        finally:
            self.close(correlation_id)


class RpcClient:
    """Publishes requests to a work queue and waits for the answer on the process's reply inbox."""

    def __init__(self, channel: AbstractChannel, exchange: str, inbox: ReplyInbox) -> None:
        self.channel = channel
        self.exchange = exchange
        self.inbox = inbox

    async def send(self, routing_key: str, body: bytes, correlation_id: str, timeout: float) -> None:
        """Publish a request whose replies go to this process's inbox (expires with the deadline).

        Bounded by the deadline too: a robust channel waits for its connection to come back.
        """
        async with asyncio.timeout(timeout):
            await publish_transient(
                self.channel,
                self.exchange,
                routing_key,
                body,
                correlation_id=correlation_id,
                reply_to=self.inbox.name,
                expiration_seconds=timeout,
            )

    async def call(self, routing_key: str, request: BaseModel, result_type: type[ResultT], timeout: float) -> ResultT:
        """Send one request and return its one reply, validated as `result_type`.

        Raises RemoteError for an error reply and RpcTimeout when no reply came in time.
        """
        correlation_id = uuid.uuid4().hex
        with self.inbox.expect(correlation_id) as replies:
            await self.send(routing_key, request.model_dump_json().encode(), correlation_id, timeout)
            try:
                body = await asyncio.wait_for(replies.get(), timeout)
            except TimeoutError as exc:
                raise RpcTimeout(f"no reply on {routing_key} within {timeout:.1f}s") from exc
        return decode_reply(body, result_type)


def decode_reply(body: bytes, result_type: type[ResultT]) -> ResultT:
    """Validate a reply as `result_type`, or raise RemoteError if it is an error reply."""
    data = orjson.loads(body)
    if isinstance(data, dict) and data.get("type") == "error":
        raise RemoteError(ErrorInfo.model_validate(data["error"]))
    return result_type.model_validate(data)


async def reply(channel: AbstractChannel, message: AbstractIncomingMessage, body: bytes) -> None:
    """Answer an RPC request on the caller's reply queue (a no-op if it asked for no reply)."""
    if not message.reply_to:
        return
    await publish_transient(channel, "", message.reply_to, body, correlation_id=message.correlation_id)
