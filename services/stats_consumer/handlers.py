"""Message handlers of the stats consumer: decode, call the logic, reply.

Acks follow the shared worker's policy: a handler that returns is acked, an unreadable message is
dead-lettered, any other exception is retried once and then dead-lettered.
"""

from __future__ import annotations

import logging

import psycopg
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from psycopg_pool import AsyncConnectionPool

from services.stats_consumer.batching import EventBatcher
from services.stats_consumer.repository import query_stats, usage_row
from shared.contracts import ErrorInfo, ErrorReply, StatsQuery, StatsResult, UsageEvent
from shared.rpc import reply
from shared.worker import Handler

log = logging.getLogger(__name__)


def usage_handler(batcher: EventBatcher[UsageEvent]) -> Handler:
    """Handle one UsageEvent: returns (and so acks) only once its batch is committed."""

    async def handle(message: AbstractIncomingMessage) -> None:
        event = UsageEvent.model_validate_json(message.body)
        # Refuse an event the table can't hold here, alone, rather than failing its whole batch.
        usage_row(event)
        await batcher.add(event)

    return handle


def stats_handler(pool: AsyncConnectionPool, channel: AbstractChannel) -> Handler:
    """Answer a StatsQuery with a StatsResult, or a 503 error reply when the database fails."""

    async def handle(message: AbstractIncomingMessage) -> None:
        query = StatsQuery.model_validate_json(message.body)
        answer: StatsResult | ErrorReply
        try:
            answer = await query_stats(pool, query.tenant)
        except psycopg.Error as exc:  # includes the pool's timeout
            log.warning("stats query failed: %s", exc)
            answer = ErrorReply(
                error=ErrorInfo(type="stats_unavailable", message="usage statistics are unavailable", status=503)
            )
        await reply(channel, message, answer.model_dump_json().encode())

    return handle
