"""Broker handler of the tenants service: decode a request, let the registry answer, broadcast, reply.

Errors cross the broker as data: a request that can't be done is an error reply with its status
(404, 409), a database failure a 503. A revoked key is announced on the key-revocations fanout
before the caller hears back, so once an admin sees "revoked" every gateway has been told.
"""

from __future__ import annotations

import logging
import time

import psycopg
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractIncomingMessage

from services.tenants.metrics import REQUEST_DURATION, REQUESTS, REVOCATION_NOTICE_FAILURES
from services.tenants.registry import Registry, TenantsError, TenantsReply
from shared.broker import json_message
from shared.contracts.base import ErrorInfo, ErrorReply
from shared.contracts.tenants import TENANTS_ADAPTER, KeyRevoked
from shared.rpc import reply

log = logging.getLogger(__name__)


class TenantsHandlers:
    """The one consumer of the tenants service: its RPC queue."""

    def __init__(self, registry: Registry, channel: AbstractChannel, revocations: AbstractExchange) -> None:
        self._registry = registry
        self._channel = channel
        self._revocations = revocations

    async def on_request(self, message: AbstractIncomingMessage) -> None:
        """Answer one request (an unreadable one raises: the worker dead-letters it and tells the caller)."""
        request = TENANTS_ADAPTER.validate_json(message.body)
        answer: TenantsReply | ErrorReply
        started = time.perf_counter()
        result = "ok"
        try:
            outcome = await self._registry.answer(request)
        except TenantsError as exc:
            result = "refused"
            answer = ErrorReply(error=exc.info())
        except psycopg.Error as exc:  # includes the pool's timeout
            result = "unavailable"
            log.warning("%s failed on the database: %s", request.type, type(exc).__name__)
            answer = ErrorReply(
                error=ErrorInfo(
                    type="service_unavailable",
                    message="the tenants database is unavailable",
                    status=503,
                    code="tenants_unavailable",
                )
            )
        else:
            if outcome.notice is not None:
                await self._broadcast(outcome.notice)
            answer = outcome.reply
        REQUEST_DURATION.labels(request.type).observe(time.perf_counter() - started)
        REQUESTS.labels(request.type, result).inc()
        await reply(self._channel, message, answer.model_dump_json().encode())

    async def _broadcast(self, notice: KeyRevoked) -> None:
        """Tell every gateway; if that fails the key still expires from their caches within seconds."""
        try:
            await self._revocations.publish(json_message(notice.model_dump_json().encode()), routing_key="")
        except Exception as exc:
            REVOCATION_NOTICE_FAILURES.inc()
            log.warning("announcing the revocation of key %s failed: %s", notice.key_id, exc)
