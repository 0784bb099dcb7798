"""Connecting to RabbitMQ and publishing: one robust connection per service, named after it."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from typing import cast

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractRobustConnection
from aiormq import spec

from shared.tracing import trace_headers

log = logging.getLogger(__name__)

JSON = "application/json"


async def connect(url: str, service: str, *, attempts: int = 30, delay: float = 1.0) -> AbstractRobustConnection:
    """Connect (robustly: aio-pika reconnects and restores channels, queues and consumers by itself).

    Retries the first connection for a while, so services can start before the broker is ready.
    """
    name = f"{service}@{socket.gethostname()}:{os.getpid()}"
    for attempt in range(1, attempts + 1):
        try:
            return await aio_pika.connect_robust(url, client_properties={"connection_name": name})
        except (ConnectionError, OSError, aio_pika.exceptions.AMQPConnectionError) as exc:
            if attempt == attempts:
                raise
            log.warning("broker not reachable (%s), retrying in %.1fs [%d/%d]", exc, delay, attempt, attempts)
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")


def json_message(
    body: bytes,
    *,
    correlation_id: str | None = None,
    reply_to: str | None = None,
    persistent: bool = False,
    expiration_seconds: float | None = None,
) -> aio_pika.Message:
    """A JSON message; persistent for events whose loss loses data, transient for RPC traffic."""
    return aio_pika.Message(
        body,
        content_type=JSON,
        correlation_id=correlation_id,
        reply_to=reply_to,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT if persistent else aio_pika.DeliveryMode.NOT_PERSISTENT,
        expiration=max(expiration_seconds, 0.001) if expiration_seconds is not None else None,
    )


async def publish_event(exchange: AbstractExchange, routing_key: str, body: bytes) -> None:
    """Publish a durable event (persistent; confirmed when the channel has publisher confirms)."""
    await exchange.publish(json_message(body, persistent=True), routing_key=routing_key, mandatory=True)


async def publish_transient(
    channel: AbstractChannel,
    exchange: str,
    routing_key: str,
    body: bytes,
    *,
    correlation_id: str | None = None,
    reply_to: str | None = None,
    expiration_seconds: float | None = None,
) -> None:
    """Publish an RPC request or reply: not persistent, not confirmed, dropped if unroutable.

    Straight to the channel's AMQP layer (aiormq): aio-pika's Message and Exchange wrappers, and
    waiting for the socket to take each frame, were a tenth of the CPU of a cache hit. A transient
    message needs neither: its sender waits for an answer with a deadline anyway. While the broker
    blocks the connection (a memory or disk alarm) publishers wait here, rather than frames piling
    up in memory that the broker is not reading.
    """
    if channel.is_closed:  # fail now rather than wait for a reconnection
        raise aiormq.exceptions.ChannelInvalidStateError(f"{channel!r} closed")
    # aiormq's own channel: its basic_publish takes `wait` (the abstract one does not say so).
    underlay = cast(aiormq.Channel, await channel.get_underlay_channel())
    await underlay.connection.ready()  # connected and not blocked (Connection.Blocked)
    properties = spec.Basic.Properties(
        content_type=JSON,
        delivery_mode=1,
        correlation_id=correlation_id,
        reply_to=reply_to,
        expiration=None if expiration_seconds is None else str(max(int(expiration_seconds * 1000), 1)),
        headers=trace_headers(),  # below aio-pika, so its instrumentation can't add them: the trace goes on
    )
    await underlay.basic_publish(
        body, exchange=exchange, routing_key=routing_key, properties=properties, mandatory=False, wait=False
    )
