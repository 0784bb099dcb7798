"""Message handlers of the stats consumer: decode, call the logic, reply.

Acks follow the shared worker's policy: a handler that returns is acked, an unreadable message is
dead-lettered, a usage event whose batch could not be written waits for the database (Retryable),
any other exception is retried once and then dead-lettered.
"""

from __future__ import annotations

import asyncio
import logging

import psycopg
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from psycopg_pool import AsyncConnectionPool

from services.stats_consumer.batching import UsageBatcher
from services.stats_consumer.cursor import InvalidCursor
from services.stats_consumer.metrics import EVENTS_DROPPED
from services.stats_consumer.queries import InvalidQuery, query_stats, query_usage
from services.stats_consumer.repository import UnstorableEvent, usage_row
from shared.contracts.base import ErrorInfo, ErrorReply
from shared.contracts.stats import STATS_REQUEST_ADAPTER, StatsQuery, StatsResult, UsagePage
from shared.contracts.usage_events import USAGE_MESSAGE_ADAPTER, UsageEvent, UsageEventBatch
from shared.rpc import reply
from shared.tracing import set_attributes, stage
from shared.worker import Handler, Retryable

log = logging.getLogger(__name__)


def usage_handler(batcher: UsageBatcher) -> Handler:
    """Handle a UsageEvent or a UsageEventBatch: returns (and so acks) only once its events are committed."""

    async def handle(message: AbstractIncomingMessage) -> None:
        decoded = USAGE_MESSAGE_ADAPTER.validate_json(message.body)
        if isinstance(decoded, UsageEventBatch):
            events = storable(decoded.events)
        else:
            # Refuse an event the table can't hold here, alone, rather than failing its whole batch.
            usage_row(decoded)
            events = [decoded]
        try:
            await asyncio.gather(*(write(batcher, event) for event in events))
        except Exception as exc:
            # Their batch was not written (the database is down or failing, or the consumer is stopping):
            # the events wait for it (durable, never dead-lettered); inserts are idempotent, so the ones
            # already written are not counted twice.
            raise Retryable(f"writing usage events failed ({type(exc).__name__})") from exc

    return handle


async def write(batcher: UsageBatcher, event: UsageEvent) -> None:
    """Write one event with its batch, in a span of its request's trace (an event of a batch names its own)."""
    with stage("usage.write", event.trace_context, request_id=event.request_id, tenant=event.tenant) as span:
        set_attributes(span, result=event.result, model=event.model)
        await batcher.submit(event)


def storable(events: list[UsageEvent]) -> list[UsageEvent]:
    """The events of a batch the table can hold; one it can't is dropped (logged, counted), not the batch."""
    kept = []
    for event in events:
        try:
            usage_row(event)
        except UnstorableEvent as exc:
            log.warning("dropping usage event %s of a batch: %s", event.event_id[:64], exc)
            EVENTS_DROPPED.inc()
            continue
        kept.append(event)
    return kept


def stats_handler(pool: AsyncConnectionPool, channel: AbstractChannel) -> Handler:
    """Answer a StatsQuery (StatsResult) or a UsageQuery (UsagePage); errors are replies too.

    A query the log can't answer (a bad cursor, a time out of range) gets a 400 reply, a database
    failure a 503.
    """

    async def handle(message: AbstractIncomingMessage) -> None:
        query = STATS_REQUEST_ADAPTER.validate_json(message.body)
        answer: StatsResult | UsagePage | ErrorReply
        try:
            if isinstance(query, StatsQuery):
                answer = await query_stats(pool, query)
            else:
                answer = await query_usage(pool, query)
        except (InvalidCursor, InvalidQuery) as exc:
            code = "invalid_cursor" if isinstance(exc, InvalidCursor) else None
            answer = ErrorReply(error=ErrorInfo(type="invalid_request_error", message=str(exc), status=400, code=code))
        except psycopg.Error as exc:  # includes the pool's timeout
            log.warning("%s failed: %s", query.type, exc)
            answer = ErrorReply(
                error=ErrorInfo(type="stats_unavailable", message="usage statistics are unavailable", status=503)
            )
        await reply(channel, message, answer.model_dump_json().encode())

    return handle
