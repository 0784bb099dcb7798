"""RPC over RabbitMQ: replies by RabbitMQ's direct reply-to, routed to their caller by correlation id.

A request may be answered by one reply (embeddings, stats, health) or by a sequence of replies
(a streamed completion); either way the caller reads from its own asyncio queue.
"""

from __future__ import annotations

import asyncio
import contextlib
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


# RabbitMQ's pseudo-queue for replies straight to the consuming channel: a request sent with it as its
# reply_to (on that channel) carries an address the broker made for the channel, which the services it goes
# through pass on (the cache worker to the LLM worker, a waiter noted in Redis).
DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"


class ReplyInbox:
    """This process's replies (one channel's direct reply-to); hands each to the caller waiting on its
    correlation id. No reply queue to declare, fill and drain: the broker hands a reply to the channel at once.
    Requests must go out on the channel the inbox started on (RpcClient)."""

    name = DIRECT_REPLY_TO

    def __init__(self) -> None:
        self._waiting: dict[str, asyncio.Queue[bytes]] = {}

    async def start(self, channel: AbstractChannel) -> None:
        queue = await channel.declare_queue(DIRECT_REPLY_TO, passive=True)
        # no_ack (direct reply-to's rule): replies are transient; a lost reply surfaces as the caller's timeout.
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
    """Publishes requests to a work queue and waits for the answer on the process's reply inbox (on the
    inbox's channel: direct reply-to answers the channel that sent the request)."""

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
    """Answer an RPC request at the caller's reply address (a no-op if it asked for no reply)."""
    if not message.reply_to:
        return
    await publish_transient(channel, "", message.reply_to, body, correlation_id=message.correlation_id)
