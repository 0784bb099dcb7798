"""Lifecycle of a broker-driven service: connect, declare, consume, drain on shutdown, close.

Acknowledgement policy (the same for every worker): a message is acked after its handler (work
and reply) is done; a message that can't be decoded or has an unknown schema version goes
straight to the dead-letter queue; a dependency outage (`Retryable`) is retried until it ends; any
other failure is retried once, then dead-lettered. An RPC caller whose request is dead-lettered
gets an error reply at once instead of a timeout.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import aio_pika
import orjson
import pydantic
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)
from prometheus_client import Counter, Histogram

from shared.acks import CoalescedAcks
from shared.broker import connect
from shared.contracts.base import ErrorInfo, ErrorReply
from shared.contracts.control import CONTROL_ADAPTER, HealthQuery, HealthReport, ModelsQuery, ModelsResult
from shared.metrics import MetricsServer
from shared.rpc import ReplyInbox, RpcClient, reply
from shared.settings import BaseServiceSettings
from shared.topology import Topology, declare

log = logging.getLogger(__name__)

Handler = Callable[[AbstractIncomingMessage], Awaitable[None]]
HealthChecks = Callable[[], Awaitable[dict[str, bool]]]
ListModels = Callable[[], Awaitable[ModelsResult]]

MESSAGES = Counter(
    "llmcache_worker_messages_total",
    "Messages handled by a worker, by queue and outcome (acked, requeued, dead_lettered).",
    ["service", "queue", "outcome"],
)
HANDLING = Histogram(
    "llmcache_worker_message_handling_seconds",
    "Time from delivery to ack, by queue.",
    ["service", "queue"],
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


class Unprocessable(Exception):
    """Raised by a handler for a message that can never succeed: dead-lettered without a retry."""


class Retryable(Exception):
    """Raised by a handler when a dependency is down (a database outage): the message waits and is
    retried for as long as it takes, never dead-lettered, so durable events outlive the outage."""


RETRY_DELAY_SECONDS = 1.0
CANCEL_TIMEOUT_SECONDS = 2.0
# How long a handler keeps trying to publish an event it must not lose before its message is requeued.
PUBLISH_PATIENCE_SECONDS = 30.0
PUBLISH_ATTEMPT_TIMEOUT_SECONDS = 5.0

EVENTS_NOT_PUBLISHED = Counter(
    "llmcache_worker_event_publish_failures_total",
    "Attempts to publish a durable event (usage, store) that the broker refused or did not confirm.",
    ["event"],
)


POISON = (pydantic.ValidationError, orjson.JSONDecodeError, UnicodeDecodeError, Unprocessable)


class Worker:
    """One service process on the broker: its connection, channels, exchange, reply inbox and consumers."""

    def __init__(self, service: str, settings: BaseServiceSettings) -> None:
        self.service = service
        self.settings = settings
        self.topology = Topology(settings.broker_prefix)
        self.connection: AbstractRobustConnection | None = None
        self._consumers: list[tuple[AbstractQueue, str]] = []
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._stop = asyncio.Event()
        self._metrics: MetricsServer | None = None
        self._acks = CoalescedAcks()

    async def start(self) -> None:
        """Connect, declare the topology and open the channels every worker uses."""
        self.connection = await connect(self.settings.rabbitmq_url.get_secret_value(), self.service)
        # Events must not be lost: their channel confirms every publish.
        self.events_channel: AbstractChannel = await self.connection.channel(publisher_confirms=True)
        self.exchange: AbstractExchange = await declare(self.events_channel, self.topology)
        # Replies and RPC requests are transient and latency-bound: no confirms.
        self.fast_channel: AbstractChannel = await self.connection.channel(publisher_confirms=False)
        self.inbox = ReplyInbox(self.topology.prefix, self.service)
        await self.inbox.start(self.fast_channel)
        self.rpc = RpcClient(self.fast_channel, self.topology.exchange, self.inbox)
        if self.settings.metrics_port:
            self._metrics = MetricsServer(self.settings.metrics_host, self.settings.metrics_port, self.ready)
            await self._metrics.start()

    async def ready(self) -> bool:
        """Ready while the broker connection is open (services add their own checks)."""
        return self.connection is not None and not self.connection.is_closed

    async def consume(self, queue_name: str, handler: Handler, *, prefetch: int) -> None:
        """Consume one queue on its own channel; prefetch is the concurrency this worker should have."""
        assert self.connection is not None
        channel = await self.connection.channel(publisher_confirms=False)
        await channel.set_qos(prefetch_count=prefetch)
        # A passive declare (not get_queue(ensure=False)): the robust channel then knows the queue and
        # restores it, with this consumer, after the broker comes back.
        queue = await channel.declare_queue(queue_name, passive=True)

        async def on_message(message: AbstractIncomingMessage) -> None:
            await self._handle(queue_name, handler, message)

        tag = await queue.consume(on_message)
        self._consumers.append((queue, tag))
        log.info("consuming %s (prefetch %d)", queue_name, prefetch)

    async def subscribe(self, fanout_exchange: str, callback: Callable[[bytes], Awaitable[None]]) -> None:
        """Hear every message of a broadcast (fanout) exchange on a queue of this process's own.

        For notices every replica must act on (a cancelled request, a revoked key); transient, no acks.
        """
        assert self.connection is not None
        channel = await self.connection.channel(publisher_confirms=False)
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(fanout_exchange)

        async def on_message(message: AbstractIncomingMessage) -> None:
            try:
                await callback(message.body)
            except POISON as exc:
                log.warning("ignoring an unreadable notice on %s: %s", fanout_exchange, _first_line(exc))

        await queue.consume(on_message, no_ack=True)

    async def _handle(self, queue_name: str, handler: Handler, message: AbstractIncomingMessage) -> None:
        self._in_flight += 1
        self._idle.clear()
        started = time.perf_counter()
        try:
            await handler(message)
        except Retryable as exc:
            log.warning("%s on %s: retrying in %.0fs", _first_line(exc), queue_name, RETRY_DELAY_SECONDS)
            await asyncio.sleep(RETRY_DELAY_SECONDS)  # holds the prefetch slot: no hot redelivery loop
            await self._reject(message)
            MESSAGES.labels(self.service, queue_name, "retried_later").inc()
        except POISON as exc:
            log.warning("dead-lettering an unreadable message on %s: %s", queue_name, _first_line(exc))
            await self._answer_caller(message, 400, "invalid_request", "The request message could not be read.")
            await self._dead_letter(queue_name, message, f"unreadable: {_first_line(exc)[:200]}")
        except Exception as exc:
            if not message.redelivered:
                log.exception("handler failed on %s (will retry once)", queue_name)
                await self._reject(message)
                MESSAGES.labels(self.service, queue_name, "requeued").inc()
            else:
                log.exception("handler failed again on %s (dead-lettering)", queue_name)
                await self._answer_caller(message, 500, "api_error", "The request failed in a worker.")
                await self._dead_letter(queue_name, message, f"failed twice: {type(exc).__name__}")
        else:
            self._acks.done(message)  # sent at the end of this turn of the loop, with the others done in it
            MESSAGES.labels(self.service, queue_name, "acked").inc()
        finally:
            HANDLING.labels(self.service, queue_name).observe(time.perf_counter() - started)
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()

    async def _dead_letter(self, queue_name: str, message: AbstractIncomingMessage, reason: str) -> None:
        """Park a message on the dead-letter queue with why, then ack it.

        Explicit rather than queue-level dead-lettering: RPC messages expire by design and must
        not fill the dead-letter queue, so only what a worker gave up on goes there.
        """
        try:
            await self.events_channel.default_exchange.publish(
                aio_pika.Message(
                    message.body,
                    content_type=message.content_type,
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    headers={"x-original-queue": queue_name, "x-dead-letter-reason": reason, "x-service": self.service},
                ),
                routing_key=self.topology.dead_letters,
            )
        except Exception as exc:
            log.error("could not dead-letter a message from %s (%s): requeueing it", queue_name, exc)
            await self._reject(message)
            MESSAGES.labels(self.service, queue_name, "requeued").inc()
            return
        try:
            await message.ack()
        finally:
            self._acks.settled_elsewhere(message)
        MESSAGES.labels(self.service, queue_name, "dead_lettered").inc()

    async def _reject(self, message: AbstractIncomingMessage) -> None:
        """Put a message back on its queue for another try."""
        try:
            await message.reject(requeue=True)
        finally:
            self._acks.settled_elsewhere(message)

    async def _answer_caller(self, message: AbstractIncomingMessage, status: int, type_: str, text: str) -> None:
        """Tell an RPC caller its request failed, so it gets an error now rather than a timeout."""
        if not message.reply_to:
            return
        try:
            body = ErrorReply(error=ErrorInfo(type=type_, message=text, status=status)).model_dump_json().encode()
            await reply(self.fast_channel, message, body)
        except Exception as exc:
            log.debug("could not answer the caller: %s", exc)

    async def serve_control(self, health_checks: HealthChecks, list_models: ListModels | None = None) -> None:
        """Answer health queries (and, for the LLM worker, model-list queries) on this service's control queue."""

        async def handle(message: AbstractIncomingMessage) -> None:
            request = CONTROL_ADAPTER.validate_json(message.body)
            if isinstance(request, HealthQuery):
                checks = await health_checks()
                checks["broker"] = await self.ready()
                answer: HealthReport | ModelsResult | ErrorReply = HealthReport(
                    service=self.service, ok=all(checks.values()), checks=checks
                )
            elif isinstance(request, ModelsQuery) and list_models is not None:
                try:
                    answer = await list_models()
                except Exception as exc:
                    # The exception text may quote upstream responses or credentials: keep it out of the reply.
                    log.warning("listing models failed: %s", type(exc).__name__)
                    answer = ErrorReply(error=ErrorInfo(message="listing the upstream's models failed", status=502))
            else:
                answer = ErrorReply(error=ErrorInfo(message="unsupported control request", status=400))
            await reply(self.fast_channel, message, answer.model_dump_json().encode())

        await self.consume(self.topology.control(self.service), handle, prefetch=4)

    async def run_until_stopped(self) -> None:
        """Block until SIGTERM or SIGINT."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        freeze_startup_objects()
        log.info("%s ready", self.service)
        await self._stop.wait()

    async def close(self) -> None:
        """Stop consuming, let in-flight messages finish within the grace period, then close."""
        if self.connection is not None and not self.connection.is_closed and self._consumers:
            cancels = asyncio.gather(*(queue.cancel(tag) for queue, tag in self._consumers), return_exceptions=True)
            try:
                # Bounded: with the broker gone, a robust channel would wait for it to come back.
                await asyncio.wait_for(cancels, CANCEL_TIMEOUT_SECONDS)
            except TimeoutError:
                log.warning("the broker did not confirm the consumers' cancellation; shutting down anyway")
        try:
            await asyncio.wait_for(self._idle.wait(), self.settings.shutdown_grace_seconds)
        except TimeoutError:
            log.warning(
                "%d messages still in flight after %.0fs; they will be redelivered",
                self._in_flight,
                self.settings.shutdown_grace_seconds,
            )
        await self._acks.drain()
        if self._metrics is not None:
            await self._metrics.stop()
        if self.connection is not None:
            await self.connection.close()
        log.info("%s stopped", self.service)


async def publish_confirmed(
    publish: Callable[[], Awaitable[None]], event: str, patience_seconds: float | None = None
) -> None:
    """Publish an event that must not be lost (a usage or store event) before the message that caused it
    is acked: retried with back-off while the broker refuses it or is unreachable, then Retryable, so
    the message is requeued rather than acked without its event (at least once, never at most once).

    `publish` must return only once the broker confirmed the message (a channel with publisher confirms).
    """
    patience_seconds = PUBLISH_PATIENCE_SECONDS if patience_seconds is None else patience_seconds
    deadline = time.monotonic() + patience_seconds
    delay = 0.1
    while True:
        try:
            await asyncio.wait_for(publish(), PUBLISH_ATTEMPT_TIMEOUT_SECONDS)
            return
        except Exception as exc:
            EVENTS_NOT_PUBLISHED.labels(event).inc()
            if time.monotonic() + delay >= deadline:
                raise Retryable(f"publishing a {event} event failed for {patience_seconds:.0f}s: {exc!r}") from exc
            if delay == 0.1:  # once per event, not once per attempt
                log.warning("publishing a %s event failed (%r): retrying until it is confirmed", event, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


def freeze_startup_objects() -> None:
    """Move everything built at startup (modules, pydantic schemas, the app) out of the collector's sight.

    A full collection walks every tracked object: with the ~100k objects of a started service that
    took 100-250 ms here, a pause that landed on whichever requests were in flight and set the tail
    latency. Frozen objects are never scanned again; what requests allocate is collected as before.
    """
    gc.collect()
    gc.freeze()


def _first_line(exc: BaseException) -> str:
    """What to log of an error: its first line, or for a message that failed validation, the first reason."""
    if isinstance(exc, pydantic.ValidationError) and exc.errors():
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return f"invalid {exc.title}{f' at {where}' if where else ''}: {first['msg']}"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def run(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run a service's async main on uvloop when available."""
    try:
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())
