"""Broker handlers of the cache worker: decode, call the lookup, the storer or the admin, reply or forward.

Requests waiting on an identical one in flight are answered here too, when its answer is stored
(`on_store_event`), or sent upstream when it stored nothing, or back through the lookup when its
leader died (`resend_waiter`, from the sweeper); single-flight leases are renewed (`on_flight_renewal`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Coroutine
from typing import Any

import psycopg
from aio_pika.abc import AbstractIncomingMessage
from opentelemetry.trace import Span

from services.cache_worker import keys
from services.cache_worker.admin import AdminAnswer, CacheAdmin
from services.cache_worker.embeddings import EmbeddingsCache, EmbeddingsHit
from services.cache_worker.entries import CachedAnswer
from services.cache_worker.exact_store import ExactStore
from services.cache_worker.feedback import Served, ServedPairs
from services.cache_worker.flights import ReplyRoute, Waiter
from services.cache_worker.lookup import Following, Hit, Lookup
from services.cache_worker.metrics import COALESCED, DEGRADED, EXPIRED, LOOKUPS
from services.cache_worker.storing import Storer
from services.cache_worker.upkeep import HitRecorder
from services.cache_worker.usage import UsagePublisher
from shared.broker import json_message, publish_transient
from shared.contracts.base import CacheInfo, ErrorInfo, ErrorReply
from shared.contracts.cache_admin import CACHE_ADMIN_ADAPTER
from shared.contracts.completions import (
    WORK_REQUEST_ADAPTER,
    CompletionReply,
    CompletionRequest,
    EmbeddingsCached,
    EmbeddingsRequest,
)
from shared.contracts.store_events import STORE_EVENT_ADAPTER, CompletionGenerated, EmbeddingsGenerated, FlightRenewal
from shared.contracts.usage_events import UsageEvent
from shared.pricing import PriceBook
from shared.rpc import reply
from shared.tracing import set_attributes, stage
from shared.usage import usage_event_id
from shared.worker import Retryable, Worker, publish_confirmed

log = logging.getLogger(__name__)


class CacheHandlers:
    """The consumers of the cache worker: lookups (request path), store events and admin requests."""

    def __init__(
        self,
        worker: Worker,
        lookup: Lookup,
        storer: Storer,
        admin: CacheAdmin,
        hits: HitRecorder,
        usage: UsagePublisher,
        prices: PriceBook,
        embeddings: EmbeddingsCache,
        exact: ExactStore,
        served: ServedPairs | None = None,
    ) -> None:
        self._worker = worker
        self._exact = exact
        self._lookup = lookup
        self._storer = storer
        self._admin = admin
        self._hits = hits
        self._usage = usage
        self._prices = prices
        self._embeddings = embeddings
        self._served = served

    async def on_lookup(self, message: AbstractIncomingMessage) -> None:
        request = WORK_REQUEST_ADAPTER.validate_json(message.body)
        if time.time() > request.deadline:
            EXPIRED.inc()
            return
        model = str(request.body.get("model"))
        with stage("cache.lookup", request_id=request.request_id, tenant=request.tenant, model=model) as span:
            await self._look_up(message, request, span)

    async def _look_up(
        self, message: AbstractIncomingMessage, request: CompletionRequest | EmbeddingsRequest, span: Span
    ) -> None:
        """Answer a hit, note a follower of a flight, or send the miss on (its trace goes on from `span`)."""
        forwarded: CompletionRequest | EmbeddingsRequest
        cached: EmbeddingsCached | None = None
        if isinstance(request, EmbeddingsRequest):
            found = await self._embeddings.lookup(request)
            if isinstance(found, EmbeddingsHit):
                set_attributes(span, result="HIT", match="exact")
                await self._answer_embeddings_hit(message, request, found)
                return
            set_attributes(span, result="MISS")
            forwarded = found.forward
            cached = EmbeddingsCached(cached=found.cached) if found.cached else None
        else:
            outcome = await self._lookup.run(request, _route_of(message))
            if isinstance(outcome, Hit):
                set_attributes(span, result="HIT", match=outcome.match, similarity=outcome.similarity)
                await self._answer_hit(_route_of(message), request, outcome)
                return
            if isinstance(outcome, Following):
                set_attributes(span, result="WAITING")
                return  # noted with the flight: answered when its leader's answer is (acked now)
            set_attributes(span, result=outcome.lookup.status)
            forwarded = request.model_copy(update={"lookup": outcome.lookup})
            if outcome.lookup.flight_leader:
                await self._forward_leader(forwarded, _route_of(message))
                return
        await self._forward(forwarded, _route_of(message))
        if cached is not None:
            # Straight to the gateway, which answers with these and the LLM worker's vectors together.
            await reply(self._worker.fast_channel, message, cached.model_dump_json().encode())

    async def _forward(self, request: CompletionRequest | EmbeddingsRequest, route: ReplyRoute | None) -> None:
        """Send a miss on to the LLM workers; its replies go where the lookup's would have."""
        await publish_transient(
            self._worker.fast_channel,
            self._worker.topology.exchange,
            self._worker.topology.llm_request,
            request.model_dump_json().encode(),
            correlation_id=route.correlation_id if route else None,
            reply_to=route.reply_to if route else None,
            expiration_seconds=request.deadline - time.time(),
        )

    async def _forward_leader(self, request: CompletionRequest, route: ReplyRoute | None) -> None:
        """Send a single flight's leader on to the LLM workers, confirmed by the broker (a refusal raises: the
        lookup is retried), then let its lease last while it waits in their queue."""
        message = json_message(
            request.model_dump_json().encode(),
            correlation_id=route.correlation_id if route else None,
            reply_to=route.reply_to if route else None,
            expiration_seconds=request.deadline - time.time(),
        )
        await self._worker.exchange.publish(message, routing_key=self._worker.topology.llm_request, mandatory=True)
        await self._lookup.leader_queued(request)

    async def answer_waiters(self, answer: CachedAnswer, waiters: list[Waiter]) -> None:
        """Answer the requests that waited on a flight whose answer was just stored (a coalesced exact hit each),
        all at once: each answer waits for its usage event's confirmed batch, which they then share.

        A reply that can't be sent makes the store event wait (Retryable): the waiters stay noted and
        are answered when it is redone (a second reply to the same request is dropped by its gateway)."""

        async def answer_one(waiter: Waiter) -> None:
            hit = Hit(answer, "exact", coalesced=True)
            await _or_retry(self._answer_hit(waiter.route, waiter.request, hit), "answering a waiter")
            LOOKUPS.labels("hit_exact", "coalesced").inc()

        await _all_or_retry([answer_one(waiter) for waiter in waiters if not waiter.expired()])
        COALESCED.labels("served").inc(len(waiters))

    async def release_waiters(self, waiters: list[Waiter]) -> None:
        """Send upstream, each on its own, the requests that waited on a flight that stored nothing."""
        for waiter in waiters:
            if not waiter.expired():
                await _or_retry(self._forward(waiter.request, waiter.route), "releasing a waiter")
                lookup = waiter.request.lookup
                if lookup is not None:  # counted as its lookup would have been, had it gone upstream then
                    LOOKUPS.labels("bypass" if lookup.status == "BYPASS" else "miss", lookup.bypass_reason or "").inc()
        COALESCED.labels("released").inc(len(waiters))

    async def resend_waiter(self, waiter: Waiter) -> None:
        """Send a waiter of a lapsed flight back through the lookup: it finds the answer, or takes the lead."""
        await publish_transient(
            self._worker.fast_channel,
            self._worker.topology.exchange,
            self._worker.topology.cache_lookup,
            waiter.request.model_copy(update={"lookup": None}).model_dump_json().encode(),
            correlation_id=waiter.correlation_id,
            reply_to=waiter.reply_to,
            expiration_seconds=waiter.request.deadline - time.time(),
        )

    async def on_flight_renewal(self, message: AbstractIncomingMessage) -> None:
        """Extend a leader's lease. A renewal that fails (Redis down) is dropped, not retried: the next one
        comes within a third of the lease, and at worst the waiters take over."""
        renewal = FlightRenewal.model_validate_json(message.body)
        try:
            await self._exact.renew_flight(renewal.exact_key, renewal.flight_id, renewal.lease_seconds)
        except Exception as exc:
            log.debug("renewing a single-flight lease failed: %s", exc)
            DEGRADED.labels("redis", "single_flight").inc()

    async def _answer_hit(self, route: ReplyRoute | None, request: CompletionRequest, hit: Hit) -> None:
        answer = hit.answer
        cache = CacheInfo(
            status="HIT",
            match=hit.match,
            similarity=round(hit.similarity, 4) if hit.similarity is not None else None,
            key=answer.exact_key,
            age_seconds=answer.age_seconds(),
            upstream=answer.upstream,
            coalesced=hit.coalesced,
        )
        body = CompletionReply(cache=cache, completion=answer.served_completion()).model_dump_json().encode()
        if route is not None:
            await publish_transient(
                self._worker.fast_channel, "", route.reply_to, body, correlation_id=route.correlation_id
            )
        self._hits.record(request.tenant, answer.exact_key)
        if hit.match == "semantic":
            self._record_served(request, hit)

        tokens = answer.usage()
        event = UsageEvent(
            # From the request: a lookup redelivered after a crash sends the same event, stored once.
            event_id=usage_event_id(request.request_id),
            request_id=request.request_id,
            tenant=request.tenant,
            key_id=request.key_id,
            namespace=request.controls.namespace,
            model=str(request.body.get("model", answer.model)),
            result="hit_exact" if hit.match == "exact" else "hit_semantic",
            reason="coalesced" if hit.coalesced else None,
            tokens_saved=tokens.total,
            cost_saved_usd=self._prices.cost(
                answer.model, tokens.prompt, tokens.completion, tokens.cache_read, tokens.cache_write
            ),
            latency_ms=(time.time() - request.received_at) * 1000,
            created_at=time.time(),
            cache_key=answer.exact_key,
            similarity=cache.similarity,
            refusals=list(hit.refusals),
        )
        await self._publish_usage(event)

    async def _answer_embeddings_hit(
        self, message: AbstractIncomingMessage, request: EmbeddingsRequest, hit: EmbeddingsHit
    ) -> None:
        count = len(hit.keys)
        cache = CacheInfo(status="HIT", match="exact", inputs_cached=count, inputs=count)
        await reply(
            self._worker.fast_channel,
            message,
            CompletionReply(cache=cache, completion=hit.response).model_dump_json().encode(),
        )
        for key in hit.keys:
            self._hits.record(request.tenant, key)
        model = str(request.body.get("model", ""))
        event = UsageEvent(
            event_id=usage_event_id(request.request_id),
            request_id=request.request_id,
            tenant=request.tenant,
            key_id=request.key_id,
            namespace=request.controls.namespace,
            model=model,
            result="hit_exact",
            tokens_saved=hit.tokens_saved,
            cost_saved_usd=self._prices.cost(model, hit.tokens_saved, 0),
            latency_ms=(time.time() - request.received_at) * 1000,
            created_at=time.time(),
        )
        await self._publish_usage(event)

    async def _publish_usage(self, event: UsageEvent) -> None:
        """The reply is already on its way; the lookup is acked once the event's batch is confirmed, and
        requeued (its reply sent again, to nobody: the gateway took the first) if it can't be."""
        await publish_confirmed(lambda: self._usage.publish(event), "usage")

    def _record_served(self, request: CompletionRequest, hit: Hit) -> None:
        """Keep the question a semantic hit answered, so the hit can be reported as wrong by its request id;
        not a request's that told the cache not to store (`Cache-Control: no-store`)."""
        prompt = keys.semantic_prompt(request.body)
        if self._served is None or prompt is None or not request.controls.store:
            return
        self._served.record(
            Served(
                request_id=request.request_id,
                tenant=request.tenant,
                namespace=request.controls.namespace,
                entry_id=hit.answer.entry_id,
                entry_key=hit.answer.exact_key,
                asked_prompt=prompt,
                asked_context=keys.conversation(request.body).text,
                similarity=hit.similarity,
                served_at=time.time(),
            )
        )

    async def on_store_event(self, message: AbstractIncomingMessage) -> None:
        event = STORE_EVENT_ADAPTER.validate_json(message.body)
        if isinstance(event, CompletionGenerated):
            with stage("cache.store", request_id=event.flight_id, tenant=event.tenant, model=event.model):
                await self._storer.store(event, self.answer_waiters)
        elif isinstance(event, EmbeddingsGenerated):
            await self._embeddings.store(event)
            await self._storer.enforce_cap(event.tenant)
        else:
            await self._storer.end_flight(event, self.release_waiters)

    async def on_admin(self, message: AbstractIncomingMessage) -> None:
        request = CACHE_ADMIN_ADAPTER.validate_json(message.body)
        answer: AdminAnswer | ErrorReply
        try:
            answer = await self._admin.handle(request)
        except (psycopg.DataError, ValueError):
            # Values PostgreSQL refuses (text with NUL bytes, ...) or Python can't convert (a time outside
            # years 1 to 9999) are the caller's to fix, not a retry's.
            answer = ErrorReply(
                error=ErrorInfo(
                    type="invalid_request_error", message="A value in the request is not valid.", status=400
                )
            )
        await reply(self._worker.fast_channel, message, answer.model_dump_json().encode())


def _route_of(message: AbstractIncomingMessage) -> ReplyRoute | None:
    return ReplyRoute(message.reply_to, message.correlation_id or "") if message.reply_to else None


async def _all_or_retry(sendings: list[Coroutine[Any, Any, None]]) -> None:
    """Run the sendings together; every one is tried, then the first failure (Retryable) is raised."""
    outcomes = await asyncio.gather(*sendings, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome


async def _or_retry(sending: Awaitable[None], what: str) -> None:
    """Send, or raise Retryable: the broker connection is down, and the event is redone once it is back."""
    try:
        await sending
    except (Retryable, asyncio.CancelledError):
        raise
    except Exception as exc:
        raise Retryable(f"{what} failed: {exc!r}") from exc
