"""The LLM worker's message handler: a cache miss in, the upstream's answer out to the waiting gateway.

A request goes to the upstream its model routes to, in the client's API format whatever the
upstream speaks (`calls`). After the answer is delivered, a storable one goes to the cache
(CompletionGenerated, EmbeddingsGenerated) and every request is counted (UsageEvent), both
confirmed by the broker before the request's message is acked: a publish the broker refuses is
retried, then the message is requeued (the usage log keeps one row per request id), so an
answered request is never left uncounted. The events not published yet are kept by request id: when
the requeued message comes back to this worker, they are published again, and the upstream is not
asked (and paid) a second time, nor is the client's answer sent again. Failing to publish never
turns a delivered answer into an error. An upstream answer of a shape that cannot be read is a 502
(a stream already relayed ends with it), never a handler failure: that would retry the message,
calling and billing the upstream twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from contextlib import aclosing
from dataclasses import dataclass
from functools import partial
from typing import Any

from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractIncomingMessage
from opentelemetry.trace import StatusCode
from pydantic import BaseModel

from services.llm_worker import anthropic_messages, completions, embeddings
from services.llm_worker.calls import Call
from services.llm_worker.events import cache_info, flight_ended, flight_renewal, store_event, usage_event
from services.llm_worker.metrics import EVENT_PUBLISH_FAILURES, EXPIRED, NOT_STORED
from services.llm_worker.providers import Provider, UpstreamError
from services.llm_worker.providers.base import MALFORMED, not_an_answer
from services.llm_worker.translate import anthropic_to_openai
from services.llm_worker.upstreams import Upstreams
from shared.broker import publish_event, publish_transient
from shared.contracts.base import ErrorInfo, ErrorReply
from shared.contracts.completions import (
    WORK_REQUEST_ADAPTER,
    ChunkReply,
    CompletionReply,
    CompletionRequest,
    EmbeddingsRequest,
    EndReply,
)
from shared.pricing import PriceBook
from shared.rpc import reply
from shared.topology import Topology
from shared.tracing import set_attributes, stage
from shared.usage import token_counts
from shared.worker import publish_confirmed

log = logging.getLogger(__name__)

# Even a request close to its deadline gets this long: the gateway may still be streaming it out.
MIN_UPSTREAM_TIMEOUT = 1.0
# Answered requests whose events the broker has not taken yet, kept for their requeued message (oldest dropped).
MAX_UNPUBLISHED = 1000


@dataclass(frozen=True)
class Event:
    """A durable event to publish: its queue, its body, and its kind (for the logs and metrics)."""

    queue: str
    body: bytes
    kind: str


class LlmRequestHandler:
    """Handles one message of the llm.request queue (a CompletionRequest) end to end."""

    def __init__(
        self,
        upstreams: Upstreams,
        prices: PriceBook,
        reply_channel: AbstractChannel,
        events_exchange: AbstractExchange,
        topology: Topology,
        *,
        upstream_timeout: float,
        cache_tool_calls: bool,
        default_max_tokens: int = 4096,
    ) -> None:
        self.upstreams = upstreams
        self.default_max_tokens = default_max_tokens
        self.prices = prices
        self.reply_channel = reply_channel
        self.events_exchange = events_exchange
        self.topology = topology
        self.upstream_timeout = upstream_timeout
        self.cache_tool_calls = cache_tool_calls
        # Requests in flight on this worker, by id: set when their client disconnects.
        self._cancelled: dict[str, asyncio.Event] = {}
        # Answered requests' events the broker refused, by request id: published when their message is back.
        self._unpublished: OrderedDict[str, list[Event]] = OrderedDict()

    async def __call__(self, message: AbstractIncomingMessage) -> None:
        request = WORK_REQUEST_ADAPTER.validate_json(message.body)
        unpublished = self._unpublished.get(request.request_id)
        if unpublished is not None:
            # Answered already, its message requeued for these: publish them, never the upstream call again.
            log.info("publishing the events of answered request_id=%s again", request.request_id)
            await self._publish_all(request.request_id, unpublished)
            return
        remaining = request.deadline - time.time()
        if remaining < 0:
            EXPIRED.inc()
            log.debug("dropping expired request request_id=%s (%.1fs late)", request.request_id, -remaining)
            if isinstance(request, CompletionRequest):
                await self._end_flight(request, "expired")
            return
        timeout = max(min(self.upstream_timeout, remaining), MIN_UPSTREAM_TIMEOUT)
        if isinstance(request, EmbeddingsRequest):
            await self._embeddings(message, request, timeout)
            return
        try:
            provider = self.upstreams.for_model(request.body.get("model"))
        except UpstreamError as exc:
            refused = exc.error
            if request.protocol == "anthropic":
                refused = anthropic_to_openai.error_for_anthropic_client(refused)  # not_found_error
            await self._reply(message, ErrorReply(error=refused, cache=cache_info(request, None)))
            await self._record(request, None, refused, None)
            return
        call = Call(provider, request.protocol, request.body, self.default_max_tokens)
        cancelled = self._cancelled.setdefault(request.request_id, asyncio.Event())
        renewing = self._keep_flight(request)
        try:
            try:
                with stage(
                    "upstream.call",
                    request_id=request.request_id,
                    tenant=request.tenant,
                    model=str(request.body.get("model")),
                    upstream=provider.label,
                ) as span:
                    if request.stream:
                        completion, error = await self._stream(message, request, call, timeout, cancelled)
                    else:
                        completion, error = await self._complete(message, request, call, timeout)
                    if completion is not None:
                        tokens = token_counts(completion.get("usage"))
                        set_attributes(span, input_tokens=tokens.prompt, output_tokens=tokens.completion)
                    if error is not None:
                        span.set_status(StatusCode.ERROR, error.type)
            finally:
                self._cancelled.pop(request.request_id, None)
            await self._record(request, completion, error, provider)
        finally:
            if renewing is not None:
                renewing.cancel()

    def _keep_flight(self, request: CompletionRequest) -> asyncio.Task[None] | None:
        """While a flight's leader is worked on, renew its lease every third of it (None: it leads none)."""
        renewal = flight_renewal(request)
        if renewal is None:
            return None
        body = renewal.model_dump_json().encode()

        async def renew() -> None:
            while True:
                try:
                    await publish_transient(
                        self.reply_channel,
                        self.topology.exchange,
                        self.topology.cache_flights,
                        body,
                        expiration_seconds=renewal.lease_seconds,
                    )
                except Exception as exc:  # the lease may lapse: its waiters then take over, nothing is lost
                    log.debug("renewing a single-flight lease failed: %s", exc)
                await asyncio.sleep(renewal.lease_seconds / 3)

        return asyncio.get_running_loop().create_task(renew(), name=f"flight-{request.request_id}")

    def cancel(self, request_id: str) -> bool:
        """Stop relaying (and storing) a streamed request whose client went away; True if it was here."""
        event = self._cancelled.get(request_id)
        if event is None:
            return False
        event.set()
        return True

    async def _complete(
        self, message: AbstractIncomingMessage, request: CompletionRequest, call: Call, timeout: float
    ) -> tuple[dict[str, Any] | None, ErrorInfo | None]:
        try:
            completion = await call.complete(timeout)
        except UpstreamError as exc:
            self._log_error(request, exc.error)
            await self._reply(message, ErrorReply(error=exc.error, cache=cache_info(request, call.provider.label)))
            return None, exc.error
        await self._reply(
            message, CompletionReply(cache=cache_info(request, call.provider.label), completion=completion)
        )
        return completion, None

    async def _stream(
        self,
        message: AbstractIncomingMessage,
        request: CompletionRequest,
        call: Call,
        timeout: float,
        cancelled: asyncio.Event,
    ) -> tuple[dict[str, Any] | None, ErrorInfo | None]:
        stream_options = request.body.get("stream_options")
        # Anthropic's events carry their usage themselves; OpenAI's usage chunk only when asked for.
        client_wants_usage = request.protocol == "anthropic" or (
            isinstance(stream_options, dict) and bool(stream_options.get("include_usage"))
        )
        chunks: list[dict[str, Any]] = []
        seq = 0
        try:
            # aclosing: if a reply fails, the upstream response is closed now, not when garbage-collected.
            async with aclosing(call.stream(timeout)) as upstream_chunks:
                async for chunk in upstream_chunks:
                    if cancelled.is_set():
                        # The client is gone: an answer it never saw whole is not stored.
                        log.info("client went away request_id=%s chunks_sent=%d", request.request_id, seq)
                        return None, ErrorInfo(type="client_disconnected", message="client went away", status=499)
                    chunks.append(chunk)
                    forwarded = completions.for_client(chunk, client_wants_usage)
                    if forwarded is None:
                        continue
                    cache = cache_info(request, call.provider.label) if seq == 0 else None
                    await self._reply(message, ChunkReply(seq=seq, cache=cache, chunk=forwarded))
                    seq += 1
        except UpstreamError as exc:
            # Chunks already sent stay sent: the gateway ends the stream with an error event.
            self._log_error(request, exc.error, chunks_sent=seq)
            # Before the first chunk the error is the whole answer, with the request's cache headers.
            cache = cache_info(request, call.provider.label) if seq == 0 else None
            await self._reply(message, ErrorReply(error=exc.error, cache=cache))
            return None, exc.error
        try:
            if request.protocol == "anthropic":
                completion = anthropic_messages.assemble(chunks)
            else:
                completion = completions.assemble(chunks)
            end = EndReply(seq=seq, usage=completion.get("usage"))
        except MALFORMED as exc:
            # Everything was relayed, but it is no answer to store or to count as one: the stream ends in an error.
            error = not_an_answer(f"a stream that can be read ({type(exc).__name__}: {exc})").error
            self._log_error(request, error, chunks_sent=seq)
            await self._reply(message, ErrorReply(error=error))
            return None, error
        await self._reply(message, end)
        return completion, None

    async def _embeddings(self, message: AbstractIncomingMessage, request: EmbeddingsRequest, timeout: float) -> None:
        """Embed the inputs the cache did not hold, answer with their vectors at their places, store and count."""
        label: str | None = None
        try:
            provider = self.upstreams.for_model(request.body.get("model"))
            label = provider.label
            upstream = await provider.embed(request.body, timeout)
            fetched = embeddings.fetched(request, upstream)
            response = embeddings.response(request, fetched)
        except (UpstreamError, *MALFORMED) as exc:
            error = (
                exc.error
                if isinstance(exc, UpstreamError)
                else not_an_answer(f"a list of embeddings for the inputs ({type(exc).__name__}: {exc})").error
            )
            await self._reply(message, ErrorReply(error=error, cache=embeddings.cache_info(request, label)))
            await self._publish_all(
                request.request_id, [self._usage(embeddings.usage_event(request, self.prices, [], error))]
            )
            return
        await self._reply(message, CompletionReply(cache=embeddings.cache_info(request, label), completion=response))
        events = []
        event = embeddings.store_event(request, fetched)
        if event is not None:
            events.append(Event(self.topology.cache_store, event.model_dump_json().encode(), "embeddings_generated"))
        events.append(self._usage(embeddings.usage_event(request, self.prices, fetched.tokens)))
        await self._publish_all(request.request_id, events)

    async def _reply(self, message: AbstractIncomingMessage, answer: BaseModel) -> None:
        await reply(self.reply_channel, message, answer.model_dump_json().encode())

    async def _record(
        self,
        request: CompletionRequest,
        completion: dict[str, Any] | None,
        error: ErrorInfo | None,
        provider: Provider | None,
    ) -> None:
        """Store a storable answer and count the request, each confirmed before the message is acked."""
        events = []
        if completion is None:
            await self._end_flight(request, error.type if error is not None else "no_answer")
        else:
            label = provider.label if provider is not None else None
            event, reason = store_event(request, completion, label, self.cache_tool_calls)
            if event is None:
                NOT_STORED.labels(reason or "unknown").inc()
                await self._end_flight(request, reason or "not_stored")
            else:
                events.append(
                    Event(self.topology.cache_store, event.model_dump_json().encode(), "completion_generated")
                )
        events.append(self._usage(usage_event(request, self.prices, completion, error)))
        await self._publish_all(request.request_id, events)

    def _usage(self, usage: BaseModel) -> Event:
        return Event(self.topology.usage_events, usage.model_dump_json().encode(), "usage")

    async def _publish_all(self, request_id: str, events: list[Event]) -> None:
        """Durable events, in order, each confirmed; retried, then the message requeued (publish_confirmed),
        with the events not published yet kept for when it comes back."""
        for index, event in enumerate(events):
            try:
                await publish_confirmed(
                    partial(publish_event, self.events_exchange, event.queue, event.body), event.kind
                )
            except Exception:
                EVENT_PUBLISH_FAILURES.labels(event.kind).inc()
                self._unpublished[request_id] = events[index:]
                self._unpublished.move_to_end(request_id)
                while len(self._unpublished) > MAX_UNPUBLISHED:
                    dropped, _ = self._unpublished.popitem(last=False)
                    log.warning("forgetting the unpublished events of request_id=%s (too many kept)", dropped)
                raise
        self._unpublished.pop(request_id, None)

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
