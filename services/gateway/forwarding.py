"""What every proxied endpoint does once a request is admitted: publish it to the cache worker, await the
replies on this process's reply queue, and answer in the client's API format (JSON or SSE).

The gateway does not touch Redis, Postgres or the upstream. Chat completions, Messages and
embeddings differ only in the request they publish and in their `Dialect`: how errors, streamed
chunks and a replayed stored answer are written.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
import pydantic
from fastapi import Request
from fastapi.responses import Response, StreamingResponse
from opentelemetry import trace
from starlette.types import Receive, Scope, Send

from services.gateway import anthropic_sse, sse
from services.gateway.auth import Principal
from services.gateway.errors import ApiError, anthropic_error_response, anthropic_error_type, error_response
from services.gateway.metrics import IN_FLIGHT, LATENCY, REQUESTS
from services.gateway.request_log import RequestLine
from services.gateway.state import GatewayState
from shared.contracts.base import CacheInfo, ErrorInfo, ErrorReply
from shared.contracts.completions import (
    REPLY_ADAPTER,
    ApiProtocol,
    ChunkReply,
    CompletionReply,
    CompletionRequest,
    EmbeddingsCached,
    EmbeddingsRequest,
    EndReply,
)
from shared.embeddings import with_cached
from shared.tracing import set_attributes
from shared.usage import estimated_tokens, texts_in, token_counts

log = logging.getLogger(__name__)
# The end of a stream whose LLM worker died mid-way (its redelivered request starts the answer over).
STREAM_INTERRUPTED = ErrorInfo(
    type="upstream_error",
    status=502,
    code="stream_interrupted",
    message="The stream was interrupted (the worker relaying it stopped) and can't be resumed; retry the request.",
)
# What pydantic adds to an error's location for the member of a union it tried: str, list[dict[str,any]], ...
_UNION_MEMBER = re.compile(r"^(str|int|float|bool|list\[.*\]|dict\[.*\]|function-.*|[A-Z]\w*)$")


class Dialect:
    """How answers are written in OpenAI's format (chat completions, embeddings)."""

    protocol: ApiProtocol = "openai"
    done: bytes = sse.DONE  # what ends a stream

    def error(self, error: ErrorInfo, headers: dict[str, str]) -> Response:
        return error_response(error.status, error.message, error.type, error.code, error.param, headers)

    def api_error(self, exc: ApiError, headers: dict[str, str]) -> Response:
        return exc.response(headers, protocol=self.protocol)

    def chunk(self, chunk: dict[str, Any]) -> bytes:
        return sse.event(chunk)

    def stream_error(self, error: ErrorInfo) -> bytes:
        body = {"message": error.message, "type": error.type, "param": error.param, "code": error.code}
        return sse.event({"error": body})

    def replay(self, completion: dict[str, Any], body: dict[str, Any]) -> list[bytes]:
        """The stream a streamed request gets for a whole (stored) answer."""
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return [sse.event(chunk) for chunk in sse.completion_to_chunks(completion, include_usage)] + [sse.DONE]


class AnthropicDialect(Dialect):
    """How answers are written in Anthropic's Messages format."""

    protocol: ApiProtocol = "anthropic"
    done = b""  # message_stop ends the stream

    def error(self, error: ErrorInfo, headers: dict[str, str]) -> Response:
        return anthropic_error_response(error.status, error.message, error.type, headers)

    def chunk(self, chunk: dict[str, Any]) -> bytes:
        return anthropic_sse.event(chunk)

    def stream_error(self, error: ErrorInfo) -> bytes:
        return anthropic_sse.error_event(anthropic_error_type(error.status, error.type), error.message)

    def replay(self, completion: dict[str, Any], body: dict[str, Any]) -> list[bytes]:
        return [anthropic_sse.event(event) for event in anthropic_sse.message_to_events(completion)]


OPENAI = Dialect()
ANTHROPIC = AnthropicDialect()


async def read_body(request: Request, limit: int, schema: type[pydantic.BaseModel]) -> dict[str, Any]:
    """The request's JSON object, checked against `schema` (400 naming the field, 413 when too large)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"Request body is larger than {limit} bytes.", code="request_too_large")
    raw = await request.body()
    if len(raw) > limit:
        raise ApiError(413, f"Request body is larger than {limit} bytes.", code="request_too_large")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "The request body is not valid JSON.", code="invalid_json") from exc
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.", code="invalid_json")
    try:
        schema.model_validate(body)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        # Without the union member pydantic tried ("messages.0.content.str" is "messages.0.content").
        param = ".".join(str(p) for p in first["loc"] if not _UNION_MEMBER.match(str(p))) or None
        raise ApiError(400, f"Invalid value for '{param}': {first['msg']}", param=param, code="invalid_value") from exc
    return body


async def forward(
    state: GatewayState,
    principal: Principal,
    work: CompletionRequest | EmbeddingsRequest,
    dialect: Dialect,
    started: float,
) -> Response:
    """Admit a request (the tenant's share of requests in flight, then its key's limits), publish it and
    answer it from its replies."""
    stream = isinstance(work, CompletionRequest) and work.stream
    request_id = work.request_id
    line = RequestLine(state, request_id, work.tenant, str(work.body.get("model")))
    # The request's server span (FastAPI's instrumentation): its id is how a response finds its trace.
    set_attributes(trace.get_current_span(), request_id=request_id, tenant=work.tenant, model=line.model)
    replies = state.inbox.open(request_id)
    IN_FLIGHT.inc()
    keep_open = False
    counted = False
    try:
        # The tenant's share first (429 past it): a request refused for it must not use up an rpm slot.
        counted = state.in_flight.acquire(principal)
        admission = await state.limiter.admit(principal)
        try:
            await state.rpc.send(
                state.topology.cache_lookup,
                work.model_dump_json().encode(),
                request_id,
                state.settings.request_timeout_seconds,
            )
        except Exception as exc:
            log.warning("publishing a request failed: %s", exc)
            raise ApiError(
                503, "The cache service is unavailable; retry shortly.", headers={"Retry-After": "1"}
            ) from exc
        first = await _next_reply(replies, state.settings.request_timeout_seconds)
        if isinstance(work, EmbeddingsRequest):
            first = await whole_embeddings(first, replies, state.settings.request_timeout_seconds)

        if isinstance(first, ErrorReply):
            count(started, first.error.status, "ERROR", stream, line.failed(first.error.code or first.error.type))
            error = first.error
            headers = cache_headers(first.cache, request_id) if first.cache else {"X-Request-Id": request_id}
            if error.retry_after_seconds is not None:
                headers["Retry-After"] = str(math.ceil(error.retry_after_seconds))
            if error.type == "upstream_auth_error":
                # The SDKs retry a 502 unless told not to; a refused key stays refused.
                headers["x-should-retry"] = "false"
            return dialect.error(error, headers)
        if isinstance(first, CompletionReply):
            headers = {**cache_headers(first.cache, request_id), **admission.headers()}
            if first.cache.status != "HIT":
                await state.limiter.record_tokens(principal, token_counts(first.completion.get("usage")).total)
            response: Response
            if not stream:
                response = Response(orjson.dumps(first.completion), media_type="application/json", headers=headers)
            else:
                events = dialect.replay(first.completion, work.body)
                response = StreamingResponse(_replay(events), media_type="text/event-stream", headers=headers)
            # Once built: a failure is counted as a 500 only.
            count(started, 200, first.cache.status, stream, line.answered(first.cache))
            return response
        if isinstance(first, ChunkReply) and stream:
            cache = first.cache or CacheInfo(status="MISS")
            count(started, 200, cache.status, stream, line.answered(cache))
            keep_open = True
            relay = _Relay(state, principal, request_id, first, replies, dialect, work.body, counted)
            return RelayResponse(relay, headers={**cache_headers(cache, request_id), **admission.headers()})
        raise ApiError(502, "Unexpected reply from the cache service.")
    except ApiError as exc:
        count(started, exc.status, "ERROR", stream, line.failed(exc.code or exc.type))
        return dialect.api_error(exc, {"X-Request-Id": request_id})
    except Exception:
        count(started, 500, "ERROR", stream, line.failed("internal"))
        raise
    finally:
        IN_FLIGHT.dec()
        if not keep_open:
            state.inbox.close(request_id)
            if counted:
                state.in_flight.release(principal)


async def whole_embeddings(first: Any, replies: asyncio.Queue[bytes], timeout: float) -> Any:
    """The reply to an embeddings request: a partly cached batch is answered in two parts, in either order
    (the cached vectors from the cache worker, the others from the LLM worker), put together here so that
    no vector crosses the broker twice. An error of either part is the reply."""
    if isinstance(first, EmbeddingsCached):
        cached, fetched = first, await _next_reply(replies, timeout)
    elif isinstance(first, CompletionReply) and first.cache.status != "HIT" and first.cache.inputs_cached:
        fetched, cached = first, await _next_reply(replies, timeout)
    else:
        return first
    for part in (fetched, cached):
        if isinstance(part, ErrorReply):
            return part
    if not isinstance(cached, EmbeddingsCached) or not isinstance(fetched, CompletionReply):
        raise ApiError(502, "Unexpected reply from the cache service.")
    try:
        inputs = fetched.cache.inputs if fetched.cache.inputs is not None else len(cached.cached)
        completion = with_cached(fetched.completion, cached.cached, inputs)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise ApiError(502, f"The embeddings could not be put together: {exc}.") from exc
    return fetched.model_copy(update={"completion": completion})


async def _next_reply(replies: asyncio.Queue[bytes], timeout: float) -> Any:
    try:
        raw = await asyncio.wait_for(replies.get(), timeout)
    except TimeoutError as exc:
        raise ApiError(504, f"No answer within {timeout:.0f}s.", code="timeout") from exc
    return REPLY_ADAPTER.validate_json(raw)


async def _replay(events: list[bytes]) -> AsyncIterator[bytes]:
    for event in events:
        yield event


@dataclass
class _Relay:
    """A streamed miss being passed on: its chunks as they arrive, and its clean-up, run once however the
    stream ends (the generator's end, or the response's when the generator never started: a client gone
    before the first byte)."""

    state: GatewayState
    principal: Principal
    request_id: str
    first: ChunkReply
    replies: asyncio.Queue[bytes]
    dialect: Dialect
    body: dict[str, Any]
    counted: bool
    sent_tokens: int = 0
    closed: bool = False
    restarted: bool = False  # its request was redelivered mid-stream: the new attempt is left to finish

    async def chunks(self) -> AsyncIterator[bytes]:
        """Pass the LLM worker's chunks on as they arrive.

        A client that goes away mid-stream is announced to the LLM workers, which stop the upstream
        call and store nothing; the tokens it was sent (and its prompt's) still count against its
        key's daily limit, estimated: the upstream's usage comes only at the end of a stream.

        A chunk numbered at or below one already relayed comes from the request redelivered to another
        LLM worker (the first died mid-stream): it starts the answer over, under another id. The client
        must never get the answer twice, so the stream ends there with an error event its SDK raises.
        The new attempt is not cancelled: if the request leads a single flight, its answer is what the
        identical requests waiting on it get (cancelled, each of them would call the upstream itself).
        """
        finished = False
        last_seq = self.first.seq
        dialect = self.dialect
        try:
            yield dialect.chunk(self.first.chunk)
            self.sent_tokens += _chunk_tokens(self.first.chunk)
            while True:
                try:
                    reply = await _next_reply(self.replies, self.state.settings.stream_idle_timeout_seconds)
                except ApiError as exc:
                    finished = True
                    yield dialect.stream_error(
                        ErrorInfo(type=exc.type, message=exc.message, status=exc.status, code=exc.code)
                    )
                    return
                if isinstance(reply, ChunkReply):
                    if reply.seq <= last_seq:
                        log.info("stream of request_id=%s restarted by a redelivery: ended", self.request_id)
                        yield dialect.stream_error(STREAM_INTERRUPTED)
                        self.restarted = True
                        return  # not finished, but the new attempt goes on for whoever waits on it
                    last_seq = reply.seq
                    yield dialect.chunk(reply.chunk)
                    self.sent_tokens += _chunk_tokens(reply.chunk)
                elif isinstance(reply, EndReply):
                    finished = True
                    if dialect.done:
                        yield dialect.done
                    if reply.usage:
                        await self.state.limiter.record_tokens(self.principal, token_counts(reply.usage).total)
                    return
                elif isinstance(reply, ErrorReply):
                    finished = True
                    yield dialect.stream_error(reply.error)
                    return
        finally:
            self.close(finished)

    def close(self, finished: bool) -> None:
        """Stop routing its replies and count it out; an unfinished stream is cancelled (unless restarted by a
        redelivery) and its tokens counted."""
        if self.closed:
            return
        self.closed = True
        state, principal = self.state, self.principal
        state.inbox.close(self.request_id)
        if self.counted:
            state.in_flight.release(principal)
        if not finished:
            if not self.restarted:
                state.announce_cancelled(self.request_id)
            if principal.tokens_per_day is not None:
                prompt = sum(estimated_tokens(text) for text in texts_in(self.body.get("messages")))
                prompt += sum(estimated_tokens(text) for text in texts_in({"system": self.body.get("system")}))
                state.record_tokens_later(principal, prompt + self.sent_tokens)


class RelayResponse(StreamingResponse):
    """The response of a streamed miss: its relay is closed when the response ends, however it ends."""

    def __init__(self, relay: _Relay, headers: dict[str, str]) -> None:
        super().__init__(relay.chunks(), media_type="text/event-stream", headers=headers)
        self.relay = relay

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.relay.close(finished=False)  # a no-op when the stream got to its end


def _chunk_tokens(chunk: dict[str, Any]) -> int:
    """About how many tokens a streamed chunk carried to the client (at least one if it carried text)."""
    texts = [text for text in texts_in(chunk) if text]
    return max(1, sum(estimated_tokens(text) for text in texts)) if texts else 0


def cache_headers(cache: CacheInfo, request_id: str) -> dict[str, str]:
    """The X-Cache* headers (and Age on hits) for a reply."""
    headers = {"X-Cache": cache.status, "X-Request-Id": request_id}
    if cache.match:
        headers["X-Cache-Match"] = cache.match
    if cache.similarity is not None:
        headers["X-Cache-Similarity"] = f"{cache.similarity:.4f}"
    if cache.key:
        headers["X-Cache-Key"] = cache.key
    if cache.status == "HIT" and cache.age_seconds is not None:
        headers["Age"] = str(cache.age_seconds)
    if cache.bypass_reason:
        headers["X-Cache-Bypass-Reason"] = cache.bypass_reason
    if cache.coalesced:
        headers["X-Cache-Coalesced"] = "true"
    if cache.inputs is not None:
        headers["X-Cache-Inputs-Cached"] = f"{cache.inputs_cached or 0}/{cache.inputs}"
    if cache.upstream == "mock":
        headers["X-Upstream"] = "mock (no upstream configured)"
    return headers


def count(started: float, status: int, cache: str, stream: bool, line: RequestLine | None = None) -> None:
    """Count an answer and its latency in the gateway's metrics, write its log line and mark its trace."""
    streamed = "true" if stream else "false"
    elapsed = time.perf_counter() - started
    REQUESTS.labels(f"{status // 100}xx", cache, streamed).inc()
    LATENCY.labels(cache, streamed).observe(elapsed)
    if line is not None:
        line.log(status, cache, stream, elapsed)
        match = line.cache.match if line.cache is not None else None
        set_attributes(trace.get_current_span(), result=cache, match=match)
