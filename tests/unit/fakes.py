"""A broker channel for handler tests: what is published on it lands on a fake exchange's publish()."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any


class ReplyChannel:
    """Stands in for an aio-pika channel that replies are published on (shared.broker.publish_transient).

    Each publish reaches `exchange.publish(message, routing_key)` as a message with the body and the
    properties, so a test's fake exchange records replies as before."""

    is_closed = False

    def __init__(self, exchange: Any) -> None:
        self.default_exchange = exchange
        self.connection = self  # the AMQP connection: always ready here

    async def ready(self) -> None:
        return None

    async def get_underlay_channel(self) -> ReplyChannel:
        return self

    async def basic_publish(self, body: bytes, *, exchange: str, routing_key: str, properties: Any, **_: Any) -> None:
        message = SimpleNamespace(
            body=body,
            correlation_id=properties.correlation_id,
            reply_to=properties.reply_to,
            content_type=properties.content_type,
            expiration=properties.expiration,
        )
        await self.default_exchange.publish(message, routing_key)
