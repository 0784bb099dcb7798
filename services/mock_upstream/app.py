"""The mock upstream's HTTP routes: OpenAI's chat, models and embeddings endpoints, Anthropic's Messages and
models endpoints (models answered in Anthropic's format when the request has `anthropic-version`),
plus /_mock controls.

Routes only parse, count, wait and serialise; what to answer comes from `answers`, and the
faults and counters live in `state.MockState` on `app.state.mock`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pydantic
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.mock_upstream import answers, anthropic_answers
from services.mock_upstream.settings import Settings
from services.mock_upstream.state import FaultSpec, MockState

log = logging.getLogger(__name__)

LATENCY_HEADER = "x-mock-latency-ms"
SLOW_STREAM_MARKER = "[mock:slow-stream]"
SLOW_MARKER = "[mock:slow]"


class MockHeaderMiddleware:
    """Marks every response (streamed ones too) with `X-Mock-Upstream: true`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_marked(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-mock-upstream", b"true")]
            await send(message)

        await self.app(scope, receive, send_marked)


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response serialised with orjson."""
    return Response(orjson.dumps(data), status_code=status, media_type="application/json", headers=headers)


def error_response(
    status: int, message: str | None = None, *, param: str | None = None, code: str | None = None
) -> Response:
    """An OpenAI-style error response."""
    return json_response(answers.error_body(status, message, code=code, param=param), status)


def fault_response(fault: FaultSpec) -> Response:
    """The response of a call an injected fault fails."""
    headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else None
    return json_response(answers.error_body(fault.status, fault.message, fault.type, fault.code), fault.status, headers)


async def read_json(request: Request) -> Any:
    """The request's JSON body; raises InvalidRequest when it is not JSON."""
    try:
        return orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise answers.InvalidRequest(
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
            "HTTP library correctly. The OpenAI API expects a JSON payload.)"
        ) from exc


def latency_seconds(request: Request, default_ms: float) -> float:
    """How long to wait before answering: the X-Mock-Latency-Ms header, else the configured default."""
    raw = request.headers.get(LATENCY_HEADER)
    if raw is not None:
        try:
            return max(float(raw), 0.0) / 1000
        except ValueError:
            log.debug("ignoring bad %s header %r", LATENCY_HEADER, raw)
    return max(default_ms, 0.0) / 1000


async def stream_events(
    chunks: list[dict[str, Any]], chunk_delay: float, fault: FaultSpec | None
) -> AsyncIterator[bytes]:
    """The SSE body of a streamed answer; with a mid-stream fault, an error event replaces the rest."""
    for position, chunk in enumerate(chunks):
        if fault is not None and position == fault.after_chunks:
            yield answers.sse(answers.error_body(fault.status, fault.message, fault.type, fault.code))
            return
        if chunk_delay and position:
            await asyncio.sleep(chunk_delay)
        yield answers.sse(chunk)
    yield answers.sse("[DONE]")


def api_key(request: Request) -> str | None:
    """The key a call came with: a bearer token (OpenAI's SDK) or `x-api-key` (Anthropic's)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else request.headers.get("x-api-key")


def anthropic_fault_response(fault: FaultSpec) -> Response:
    headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else None
    return json_response(anthropic_answers.error_body(fault.status, fault.message, fault.type), fault.status, headers)


async def anthropic_stream_events(
    events: list[dict[str, Any]], chunk_delay: float, fault: FaultSpec | None
) -> AsyncIterator[bytes]:
    """The SSE body of a streamed Message; with a mid-stream fault, an `error` event replaces the rest."""
    for position, event in enumerate(events):
        if fault is not None and position == fault.after_chunks:
            error = anthropic_answers.error_body(fault.status, fault.message, fault.type)
            yield anthropic_answers.sse(error)
            return
        if chunk_delay and position:
            await asyncio.sleep(chunk_delay)
        yield anthropic_answers.sse(event)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the mock upstream's FastAPI app (with fresh faults and counters)."""
    settings = settings or Settings()
    app = FastAPI(title="Mock OpenAI upstream", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = settings
    app.state.mock = MockState()
    app.add_middleware(MockHeaderMiddleware)

    @app.exception_handler(answers.InvalidRequest)
    async def invalid_request(_: Request, exc: Exception) -> Response:
        return error_response(400, str(exc), param=getattr(exc, "param", None))

    @app.exception_handler(RequestValidationError)
    async def invalid_params(_: Request, exc: Exception) -> Response:
        return error_response(400, str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 500)
        if status == 404:  # an unknown route, as OpenAI words it (not a missing model)
            return error_response(404, f"Invalid URL ({request.method} {request.url.path})", code="unknown_url")
        return error_response(status, str(getattr(exc, "detail", "")) or None)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        state: MockState = app.state.mock
        body = await read_json(request)
        answers.validate_chat_request(body)
        stream = bool(body.get("stream"))
        state.count_chat(answers.last_user_text(body["messages"]), stream)
        state.count_key(api_key(request))
        latency = latency_seconds(request, settings.latency_ms)
        if SLOW_MARKER in answers.last_user_text(body["messages"]):
            latency = max(latency, 2.0)  # lets a test act while a request is in flight
        await asyncio.sleep(latency)

        fault = state.take_fault()
        mid_stream = fault is not None and stream and fault.after_chunks is not None
        if fault is not None:
            await asyncio.sleep(fault.delay_ms / 1000)
            if not mid_stream:
                return fault_response(fault)

        planned = answers.plan_answers(body)
        completion_id, created = answers.new_completion_id(), int(time.time())
        if not stream:
            return json_response(answers.completion(body, planned, completion_id, created))
        chunks = answers.chunks(body, planned, completion_id, created)
        chunk_delay = settings.chunk_delay_ms / 1000
        if SLOW_STREAM_MARKER in answers.last_user_text(body["messages"]):
            chunk_delay = 0.2  # lets a test leave mid-stream (clients can't send the mock headers through the proxy)
        return StreamingResponse(
            stream_events(chunks, chunk_delay, fault if mid_stream else None),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache"},
        )

    @app.post("/v1/messages")
    async def messages(request: Request) -> Response:
        state: MockState = app.state.mock
        try:
            body = orjson.loads(await request.body())
            anthropic_answers.validate_messages_request(body)
        except (orjson.JSONDecodeError, answers.InvalidRequest) as exc:
            message = str(exc) if isinstance(exc, answers.InvalidRequest) else "The request body is not valid JSON."
            return json_response(anthropic_answers.error_body(400, message), 400)
        stream = bool(body.get("stream"))
        state.count_messages(anthropic_answers.block_text(body["messages"][-1].get("content")), stream)
        state.count_key(api_key(request))
        await asyncio.sleep(latency_seconds(request, settings.latency_ms))

        fault = state.take_fault()
        mid_stream = fault is not None and stream and fault.after_chunks is not None
        if fault is not None:
            await asyncio.sleep(fault.delay_ms / 1000)
            if not mid_stream:
                return anthropic_fault_response(fault)
        plan = anthropic_answers.plan_message(body)
        message_id = anthropic_answers.new_message_id()
        if not stream:
            return json_response(anthropic_answers.message(body, plan, message_id))
        events = anthropic_answers.events(body, plan, message_id)
        return StreamingResponse(
            anthropic_stream_events(events, settings.chunk_delay_ms / 1000, fault if mid_stream else None),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache"},
        )

    @app.get("/v1/models")
    async def list_models(request: Request) -> Response:
        app.state.mock.models_calls += 1
        if request.headers.get("anthropic-version"):
            return json_response(anthropic_answers.models_list())
        return json_response(answers.models_list())

    @app.post("/v1/embeddings")
    async def create_embeddings(request: Request) -> Response:
        state: MockState = app.state.mock
        body = await read_json(request)
        result = answers.embeddings(body)
        state.embedding_calls += 1
        state.embedding_inputs += len(result["data"])
        state.count_key(api_key(request))
        await asyncio.sleep(latency_seconds(request, settings.latency_ms))
        return json_response(result)

    @app.post("/_mock/faults")
    async def set_fault(request: Request) -> Response:
        try:
            fault = FaultSpec.model_validate(await read_json(request))
        except pydantic.ValidationError as exc:
            return error_response(400, f"bad fault spec: {exc.errors(include_url=False)}")
        app.state.mock.set_fault(fault)
        return json_response({"ok": True, "fault": fault.model_dump()})

    @app.delete("/_mock/faults")
    async def clear_faults() -> Response:
        app.state.mock.clear_fault()
        return json_response({"ok": True})

    @app.get("/_mock/stats")
    async def stats() -> Response:
        return json_response(app.state.mock.stats())

    @app.post("/_mock/reset")
    async def reset() -> Response:
        app.state.mock.reset()
        return json_response({"ok": True})

    @app.get("/healthz")
    async def healthz() -> Response:
        return json_response({"ok": True})

    return app
