"""The LLM worker's message handler: a cache miss in, the upstream's answer out to the waiting gateway.

After the answer is delivered, a storable one goes to the cache (CompletionGenerated) and every
request is counted (UsageEvent); failing to publish those never turns a delivered answer into an error.
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import aclosing
from typing import Any

from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractIncomingMessage
from pydantic import BaseModel

from services.llm_worker.completions import assemble, for_client
from services.llm_worker.events import cache_info, flight_ended, store_event, usage_event
from services.llm_worker.metrics import EVENT_PUBLISH_FAILURES, EXPIRED, NOT_STORED
from services.llm_worker.upstream import Upstream, UpstreamError
from shared.broker import publish_event
from shared.contracts import ChunkReply, CompletionReply, CompletionRequest, EndReply, ErrorInfo, ErrorReply
from shared.pricing import PriceBook
from shared.rpc import reply
from shared.topology import Topology

log = logging.getLogger(__name__)

# Even a request close to its deadline gets this long: the gateway may still be streaming it out.
MIN_UPSTREAM_TIMEOUT = 1.0


class LlmRequestHandler:
    """Handles one message of the llm.request queue (a CompletionRequest) end to end."""

    def __init__(
        self,
        upstream: Upstream,
        prices: PriceBook,
        reply_channel: AbstractChannel,
        events_exchange: AbstractExchange,
        topology: Topology,
        *,
        upstream_timeout: float,
        cache_tool_calls: bool,
    ) -> None:
        self.upstream = upstream
        self.prices = prices
        self.reply_channel = reply_channel
        self.events_exchange = events_exchange
        self.topology = topology
        self.upstream_timeout = upstream_timeout
        self.cache_tool_calls = cache_tool_calls
        # Requests in flight on this worker, by id: set when their client disconnects.
        self._cancelled: dict[str, asyncio.Event] = {}

    async def __call__(self, message: AbstractIncomingMessage) -> None:
        request = CompletionRequest.model_validate_json(message.body)
        remaining = request.deadline - time.time()
        if remaining < 0:
            EXPIRED.inc()
            log.debug("dropping expired request request_id=%s (%.1fs late)", request.request_id, -remaining)
            await self._end_flight(request, "expired")
            return
        timeout = max(min(self.upstream_timeout, remaining), MIN_UPSTREAM_TIMEOUT)
        cancelled = self._cancelled.setdefault(request.request_id, asyncio.Event())
        try:
            if request.stream:
                completion, error = await self._stream(message, request, timeout, cancelled)
            else:
                completion, error = await self._complete(message, request, timeout)
        finally:
            self._cancelled.pop(request.request_id, None)
        await self._record(request, completion, error)

    def cancel(self, request_id: str) -> bool:
        """Stop relaying (and storing) a streamed request whose client went away; True if it was here."""
        event = self._cancelled.get(request_id)
        if event is None:
            return False
        event.set()
        return True

    async def _complete(
        self, message: AbstractIncomingMessage, request: CompletionRequest, timeout: float
    ) -> tuple[dict[str, Any] | None, ErrorInfo | None]:
        try:
            completion = await self.upstream.complete(request.body, timeout)
        except UpstreamError as exc:
            self._log_error(request, exc.error)
            await self._reply(message, ErrorReply(error=exc.error))
            return None, exc.error
        await self._reply(
            message, CompletionReply(cache=cache_info(request, self.upstream.label), completion=completion)
        )
        return completion, None

    async def _stream(
        self, message: AbstractIncomingMessage, request: CompletionRequest, timeout: float, cancelled: asyncio.Event
    ) -> tuple[dict[str, Any] | None, ErrorInfo | None]:
        stream_options = request.body.get("stream_options")
        client_wants_usage = isinstance(stream_options, dict) and bool(stream_options.get("include_usage"))
        chunks: list[dict[str, Any]] = []
        seq = 0
        try:
            # aclosing: if a reply fails, the upstream response is closed now, not when garbage-collected.
            async with aclosing(self.upstream.stream(request.body, timeout)) as upstream_chunks:
                async for chunk in upstream_chunks:
                    if cancelled.is_set():
                        # The client is gone: an answer it never saw whole is not stored.
                        log.info("client went away request_id=%s chunks_sent=%d", request.request_id, seq)
                        return None, ErrorInfo(type="client_disconnected", message="client went away", status=499)
                    chunks.append(chunk)
                    forwarded = for_client(chunk, client_wants_usage)
                    if forwarded is None:
                        continue
                    cache = cache_info(request, self.upstream.label) if seq == 0 else None
                    await self._reply(message, ChunkReply(seq=seq, cache=cache, chunk=forwarded))
                    seq += 1
        except UpstreamError as exc:
            # Chunks already sent stay sent: the gateway ends the stream with an error event.
            self._log_error(request, exc.error, chunks_sent=seq)
            await self._reply(message, ErrorReply(error=exc.error))
            return None, exc.error
        completion = assemble(chunks)
        await self._reply(message, EndReply(seq=seq, usage=completion.get("usage")))
        return completion, None

    async def _reply(self, message: AbstractIncomingMessage, answer: BaseModel) -> None:
        await reply(self.reply_channel, message, answer.model_dump_json().encode())

    async def _record(
        self, request: CompletionRequest, completion: dict[str, Any] | None, error: ErrorInfo | None
    ) -> None:
        """Store a storable answer and count the request; failures here are logged and counted only."""
        if completion is None:
            await self._end_flight(request, error.type if error is not None else "no_answer")
        else:
            try:
                event, reason = store_event(request, completion, self.upstream.label, self.cache_tool_calls)
                if event is None:
                    NOT_STORED.labels(reason or "unknown").inc()
                    await self._end_flight(request, reason or "not_stored")
                else:
                    await publish_event(
                        self.events_exchange, self.topology.cache_store, event.model_dump_json().encode()
                    )
            except Exception as exc:
                EVENT_PUBLISH_FAILURES.labels("completion_generated").inc()
                log.warning("could not publish CompletionGenerated request_id=%s: %r", request.request_id, exc)
        try:
            usage = usage_event(request, self.prices, completion, error)
            await publish_event(self.events_exchange, self.topology.usage_events, usage.model_dump_json().encode())
        except Exception as exc:
            EVENT_PUBLISH_FAILURES.labels("usage").inc()
            log.warning("could not publish UsageEvent request_id=%s: %r", request.request_id, exc)

    async def _end_flight(self, request: CompletionRequest, reason: str) -> None:
        """Release the waiters of this request's single flight: nothing will be stored for them."""
        event = flight_ended(request, reason)
        if event is None:
            return
        try:
            await publish_event(self.events_exchange, self.topology.cache_store, event.model_dump_json().encode())
        except Exception as exc:
            EVENT_PUBLISH_FAILURES.labels("flight_ended").inc()
            log.warning("could not publish FlightEnded request_id=%s: %r", request.request_id, exc)

    @staticmethod
    def _log_error(request: CompletionRequest, error: ErrorInfo, chunks_sent: int = 0) -> None:
        log.info(
            "upstream error request_id=%s status=%d type=%s chunks_sent=%d",
            request.request_id,
            error.status,
            error.type,
            chunks_sent,
        )
