"""POST /v1/chat/completions (and the old /api/v1/chat/completions): publish, await the reply, answer.

The gateway does not touch Redis, Postgres or the upstream: it validates, publishes a
CompletionRequest to the cache worker, and turns the replies on its reply queue into an HTTP
response (JSON, or server-sent events for `stream: true`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import orjson
import pydantic
from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from services.gateway import sse
from services.gateway.auth import Principal, authenticate, authorize_model
from services.gateway.cache_controls import parse_cache_controls
from services.gateway.errors import ApiError, error_response
from services.gateway.metrics import IN_FLIGHT, LATENCY, REQUESTS
from services.gateway.schemas import ChatCompletionBody
from services.gateway.state import GatewayState
from shared.contracts import (
    REPLY_ADAPTER,
    CacheInfo,
    ChunkReply,
    CompletionReply,
    CompletionRequest,
    EndReply,
    ErrorReply,
)

log = logging.getLogger(__name__)
# What pydantic adds to an error's location for the member of a union it tried: str, list[dict[str,any]], ...
_UNION_MEMBER = re.compile(r"^(str|int|float|bool|list\[.*\]|dict\[.*\]|function-.*|[A-Z]\w*)$")
router = APIRouter()

CHAT_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": ChatCompletionBody.model_json_schema(ref_template="#/components/schemas/{model}")
            }
        },
    }
}


@router.post("/v1/chat/completions", openapi_extra=CHAT_OPENAPI)
@router.post("/api/v1/chat/completions", openapi_extra=CHAT_OPENAPI, include_in_schema=False)
async def chat_completions(request: Request) -> Response:
    """Answer a chat completion from the cache or the upstream, as OpenAI would."""
    state: GatewayState = request.app.state.gateway
    started = time.perf_counter()
    try:
        principal = await authenticate(request)
        body = await _read_body(request, state.settings.max_body_bytes)
        authorize_model(principal, body["model"])
        # Before admission: a request refused for a bad header does not use up the key's quota.
        controls = parse_cache_controls(request.headers)
        admission = await state.limiter.admit(principal)
    except ApiError as exc:
        # Counted like every other answer: the error-rate alert must see a tenants-service outage's 503s.
        _count(started, exc.status, "ERROR", stream=False, line=RequestLine(state, error=exc.code or exc.type))
        raise
    except Exception:
        _count(started, 500, "ERROR", stream=False, line=RequestLine(state, error="internal"))
        raise
    now = time.time()
    completion_request = CompletionRequest(
        request_id=uuid.uuid4().hex,
        tenant=principal.tenant,
        key_id=principal.key_id,
        received_at=now,
        deadline=now + state.settings.request_timeout_seconds,
        stream=bool(body.get("stream", False)),
        body=body,
        controls=controls,
    )
    stream = completion_request.stream
    request_id = completion_request.request_id
    line = RequestLine(state, request_id, principal.tenant, str(body["model"]))
    replies = state.inbox.open(request_id)
    IN_FLIGHT.inc()
    keep_open = False
    try:
        try:
            await state.rpc.send(
                state.topology.cache_lookup,
                completion_request.model_dump_json().encode(),
                request_id,
                state.settings.request_timeout_seconds,
            )
        except Exception as exc:
            log.warning("publishing a request failed: %s", exc)
            raise ApiError(
                503, "The cache service is unavailable; retry shortly.", headers={"Retry-After": "1"}
            ) from exc
        first = await _next_reply(replies, state.settings.request_timeout_seconds)

        if isinstance(first, ErrorReply):
            _count(started, first.error.status, "ERROR", stream, line=line.failed(first.error.code or first.error.type))
            error = first.error
            headers = {"X-Request-Id": request_id}
            if error.retry_after_seconds is not None:
                headers["Retry-After"] = str(math.ceil(error.retry_after_seconds))
            if error.type == "upstream_auth_error":
                # The openai SDK retries a 502 unless told not to; a refused key stays refused.
                headers["x-should-retry"] = "false"
            return error_response(error.status, error.message, error.type, error.code, error.param, headers)
        if isinstance(first, CompletionReply):
            headers = {**cache_headers(first.cache, request_id), **admission.headers()}
            if first.cache.status != "HIT":
                usage = first.completion.get("usage") or {}
                await state.limiter.record_tokens(principal, int(usage.get("total_tokens") or 0))
            response: Response
            if not stream:
                response = Response(orjson.dumps(first.completion), media_type="application/json", headers=headers)
            else:
                include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
                chunks = sse.completion_to_chunks(first.completion, include_usage)
                response = StreamingResponse(_replay(chunks), media_type="text/event-stream", headers=headers)
            _count(
                started, 200, first.cache.status, stream, line=line.answered(first.cache)
            )  # once built: a failure is counted as a 500 only
            return response
        if isinstance(first, ChunkReply) and stream:
            cache = first.cache or CacheInfo(status="MISS")
            _count(started, 200, cache.status, stream, line=line.answered(cache))
            keep_open = True
            return StreamingResponse(
                _relay(state, principal, request_id, first, replies),
                media_type="text/event-stream",
                headers={**cache_headers(cache, request_id), **admission.headers()},
            )
        raise ApiError(502, "Unexpected reply from the cache service.")
    except ApiError as exc:
        _count(started, exc.status, "ERROR", stream, line=line.failed(exc.code or exc.type))
        return exc.response({"X-Request-Id": request_id})
    except Exception:
        _count(started, 500, "ERROR", stream, line=line.failed("internal"))
        raise
    finally:
        IN_FLIGHT.dec()
        if not keep_open:
            state.inbox.close(request_id)


async def _read_body(request: Request, limit: int) -> dict[str, Any]:
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
        ChatCompletionBody.model_validate(body)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        # Without the union member pydantic tried ("messages.0.content.str" is "messages.0.content").
        param = ".".join(str(p) for p in first["loc"] if not _UNION_MEMBER.match(str(p))) or None
        raise ApiError(400, f"Invalid value for '{param}': {first['msg']}", param=param, code="invalid_value") from exc
    return body


async def _next_reply(replies: asyncio.Queue[bytes], timeout: float) -> Any:
    try:
        raw = await asyncio.wait_for(replies.get(), timeout)
    except TimeoutError as exc:
        raise ApiError(504, f"No answer within {timeout:.0f}s.", code="timeout") from exc
    return REPLY_ADAPTER.validate_json(raw)


async def _replay(chunks: list[dict[str, Any]]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield sse.event(chunk)
    yield sse.DONE


async def _relay(
    state: GatewayState, principal: Principal, request_id: str, first: ChunkReply, replies: asyncio.Queue[bytes]
) -> AsyncIterator[bytes]:
    """Pass the LLM worker's chunks on as they arrive; close the reply route however the stream ends.

    A client that goes away mid-stream is announced to the LLM workers, which stop the upstream
    call and store nothing.
    """
    finished = False
    try:
        yield sse.event(first.chunk)
        while True:
            try:
                reply = await _next_reply(replies, state.settings.stream_idle_timeout_seconds)
            except ApiError as exc:
                finished = True
                yield sse.event({"error": {"message": exc.message, "type": exc.type, "code": exc.code}})
                return
            if isinstance(reply, ChunkReply):
                yield sse.event(reply.chunk)
            elif isinstance(reply, EndReply):
                finished = True
                yield sse.DONE
                if reply.usage:
                    await state.limiter.record_tokens(principal, int(reply.usage.get("total_tokens") or 0))
                return
            elif isinstance(reply, ErrorReply):
                finished = True
                error = reply.error
                body = {"message": error.message, "type": error.type, "param": error.param, "code": error.code}
                yield sse.event({"error": body})
                return
    finally:
        state.inbox.close(request_id)
        if not finished:
            state.announce_cancelled(request_id)


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
    if cache.upstream == "mock":
        headers["X-Upstream"] = "mock (no upstream configured)"
    return headers


def _count(started: float, status: int, cache: str, stream: bool, line: RequestLine | None = None) -> None:
    streamed = "true" if stream else "false"
    elapsed = time.perf_counter() - started
    REQUESTS.labels(f"{status // 100}xx", cache, streamed).inc()
    LATENCY.labels(cache, streamed).observe(elapsed)
    if line is not None:
        line.log(status, cache, stream, elapsed)


_UNSAFE = re.compile(r"[^\w.:/@+-]")


def _safe(value: str | None) -> str:
    """A value as one token of a log line: no spaces or control characters, at most 80 characters."""
    return _UNSAFE.sub("?", value[:80]) if value else "-"


@dataclass(frozen=True)
class RequestLine:
    """The one log line of a request: result, match, similarity, model, tenant, latency; never the
    prompt, the answer or the key (LOG_REQUESTS=false turns it off)."""

    state: GatewayState
    request_id: str | None = None
    tenant: str | None = None
    model: str | None = None
    cache: CacheInfo | None = None
    error: str | None = None

    def answered(self, cache: CacheInfo) -> RequestLine:
        return replace(self, cache=cache)

    def failed(self, error: str) -> RequestLine:
        return replace(self, error=error)

    def log(self, status: int, result: str, stream: bool, elapsed: float) -> None:
        if not self.state.settings.log_requests:
            return
        cache = self.cache
        parts = [f"request {result}"]
        if cache is not None and cache.match:
            parts.append(f"match={cache.match}")
        if cache is not None and cache.similarity is not None:
            parts.append(f"similarity={cache.similarity:.4f}")
        if cache is not None and cache.bypass_reason:
            parts.append(f"reason={_safe(cache.bypass_reason)}")
        if cache is not None and cache.coalesced:
            parts.append("coalesced=true")
        if self.error:
            parts.append(f"error={_safe(self.error)}")
        parts += [
            f"model={_safe(self.model)}",
            f"tenant={_safe(self.tenant)}",
            f"status={status}",
            f"latency_ms={elapsed * 1000:.1f}",
        ]
        if stream:
            parts.append("stream=true")
        parts.append(f"id={self.request_id or '-'}")
        log.info(" ".join(parts))
