"""Transient publishes: straight on the AMQP channel, with the properties an RPC needs, and some backpressure."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from shared.broker import publish_transient


class Connection:
    def __init__(self) -> None:
        self.unblocked = asyncio.Event()
        self.unblocked.set()

    async def ready(self) -> None:
        await self.unblocked.wait()


class Underlay:
    def __init__(self) -> None:
        self.published: list[dict[str, Any]] = []
        self.connection = Connection()

    async def basic_publish(self, body: bytes, **kwargs: Any) -> None:
        self.published.append({"body": body, **kwargs})


class Channel:
    def __init__(self, closed: bool = False) -> None:
        self.is_closed = closed
        self.underlay = Underlay()

    async def get_underlay_channel(self) -> Underlay:
        return self.underlay


async def test_a_request_carries_what_its_reply_needs() -> None:
    channel = Channel()
    await publish_transient(
        channel,  # type: ignore[arg-type]
        "x.direct",
        "x.cache.lookup",
        b"{}",
        correlation_id="c1",
        reply_to="x.reply.gw",
        expiration_seconds=0.0004,
    )
    [sent] = channel.underlay.published
    assert (sent["exchange"], sent["routing_key"], sent["mandatory"]) == ("x.direct", "x.cache.lookup", False)
    properties = sent["properties"]
    assert (properties.correlation_id, properties.reply_to, properties.delivery_mode) == ("c1", "x.reply.gw", 1)
    assert properties.content_type == "application/json"
    assert properties.expiration == "1"  # integer milliseconds, at least 1


async def test_a_closed_channel_fails_at_once() -> None:
    with pytest.raises(Exception, match="closed"):
        await publish_transient(Channel(closed=True), "", "q", b"{}")  # type: ignore[arg-type]


async def test_publishers_wait_while_the_broker_blocks_the_connection() -> None:
    channel = Channel()
    channel.underlay.connection.unblocked.clear()  # Connection.Blocked: a memory or disk alarm
    publishing = asyncio.ensure_future(publish_transient(channel, "", "q", b"{}"))  # type: ignore[arg-type]
    await asyncio.sleep(0.05)
    assert not publishing.done() and channel.underlay.published == []
    channel.underlay.connection.unblocked.set()  # Connection.Unblocked
    await asyncio.wait_for(publishing, 1)
    assert len(channel.underlay.published) == 1
