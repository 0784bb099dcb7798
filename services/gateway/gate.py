"""The gate every request with a body to the API (/v1/, /api/) passes before a route sees it: a body
declared larger than MAX_BODY_BYTES is refused (413) at once, then its caller is authenticated, then its
body is read within MAX_BODY_BYTES (413 while reading, chunked uploads included), then its JSON structure
is checked (400 past MAX_BODY_DEPTH levels of nesting or MAX_BODY_CONTAINERS objects and arrays).
Nothing has parsed the body by then. Paths outside the API (health, metrics, the dashboard's files) need
no key and read no body: the gate leaves them alone.

An ASGI middleware, not route code: FastAPI reads and parses a route's body model before the route's
dependencies run, so a caller without a key could make the gateway read and parse any amount of
JSON; and a body nested deeper than the workers' JSON parsers go would reach a worker only to be
dead-lettered (or fail the publish, past orjson's 255 levels).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING

import numpy as np
from fastapi import Request
from fastapi.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.gateway.auth import authenticate, is_admin_key, require_admin
from services.gateway.errors import ApiError, protocol_of
from services.gateway.forwarding import count
from services.gateway.request_log import RequestLine

if TYPE_CHECKING:
    from services.gateway.state import GatewayState

# Endpoints whose answers the gateway's request metrics count (the error-rate alert reads them).
COUNTED_PATHS = frozenset(
    {"/v1/chat/completions", "/api/v1/chat/completions", "/v1/messages", "/api/v1/messages", "/v1/embeddings"}
)
ADMIN_PREFIX = "/api/v1/admin"
# Where the routes that need a key are (every route that reads a body among them).
KEYED_PREFIXES = ("/v1/", "/api/")
# A JSON string, escapes included: what the structure check skips. One left open runs to the end of the
# body (the parser refuses it anyway). Possessive, and never failing once a quote opens it: a match that
# could fail would be retried from every quote inside the string, rescanning the body once per quote.
_JSON_STRING = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"?', re.DOTALL)
_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[]{}")


class ClientGone(Exception):
    """The client disconnected while its body was being read."""


# A proxied route's handler, which the gate calls itself (`direct`).
Handler = Callable[[Request], Awaitable[Response]]


class RequestGate:
    """ASGI middleware: give an API request its id (every answer carries it), authenticate, then read the body
    within the limits, then hand it to the app."""

    def __init__(self, app: ASGIApp, direct: Mapping[tuple[str, str], Handler] | None = None) -> None:
        self.app = app
        # (method, path) -> the handler of a proxied route, called from here: the router and FastAPI's
        # middlewares past this one were a fifth of the gateway's CPU per cache hit, for nothing these
        # routes use (they read their body themselves and answer their own errors, as the gate does).
        self.direct = dict(direct or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not needs_key(scope["path"]):
            await self.app(scope, receive, send)
            return
        # The request's id from here on: its answer's X-Request-Id, its log line, its trace, its usage record.
        request_id = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        if not has_body(scope):
            await self.app(scope, receive, with_request_id(send, request_id))
            return
        started = time.perf_counter()
        request = Request(scope)
        state: GatewayState = scope["app"].state.gateway
        settings = state.settings
        declared = declared_length(scope)
        try:
            if declared is not None and declared > settings.max_body_bytes:
                raise too_large(settings.max_body_bytes)  # known without a key look-up or a byte read
            await admit_caller(request)
            body = await read_within(receive, settings.max_body_bytes, declared)
            check_structure(body, settings.max_body_depth, settings.max_body_containers)
        except ClientGone:
            return
        except ApiError as exc:
            if request.url.path in COUNTED_PATHS:
                line = RequestLine(state, request_id=request_id, error=exc.code or exc.type)
                count(started, exc.status, "ERROR", stream=False, line=line)
            response = exc.response({"X-Request-Id": request_id}, protocol=protocol_of(request))
            await response(scope, receive, send)
            return
        handler = self.direct.get((scope["method"], scope["path"]))
        if handler is None:
            await self.app(scope, replay(body, receive), with_request_id(send, request_id))
            return
        # The proxied routes set X-Request-Id on every answer themselves: no header scan on a hit's way out.
        try:
            answer = await handler(Request(scope, replay(body, receive)))
        except ApiError as exc:  # refused by the route (counted, with its X-Request-Id, there)
            answer = exc.response(protocol=protocol_of(request))
        await answer(scope, receive, send)


def with_request_id(send: Send, request_id: str) -> Send:
    """`send`, adding X-Request-Id to the response unless the route set it (the proxied ones do)."""
    header = request_id.encode()

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = message.get("headers", [])
            if not any(name.lower() == b"x-request-id" for name, _ in headers):
                message = {**message, "headers": [*headers, (b"x-request-id", header)]}
        await send(message)

    return sending


async def admit_caller(request: Request) -> None:
    """The admin key on admin routes; elsewhere the admin key or a valid key (its principal kept for the route)."""
    if request.url.path.startswith(ADMIN_PREFIX):
        await require_admin(request)
    elif not is_admin_key(request):
        request.state.principal = await authenticate(request)


def needs_key(path: str) -> bool:
    """Whether a path's routes need a key (the API); the others neither need one nor read a body."""
    return path.startswith(KEYED_PREFIXES)


def has_body(scope: Scope) -> bool:
    """Whether the request says it carries a body (a Content-Length above 0, or a Transfer-Encoding)."""
    for name, value in scope["headers"]:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() not in (b"", b"0")):
            return True
    return False


def declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.strip().isdigit() else None
    return None


async def read_within(receive: Receive, limit: int, declared: int | None) -> bytes:
    """The whole body, or ApiError 413 as soon as it is known to be larger than `limit` bytes."""
    if declared is not None and declared > limit:
        raise too_large(limit)
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        part = message.get("body", b"")
        size += len(part)
        if size > limit:
            raise too_large(limit)
        parts.append(part)
        if not message.get("more_body", False):
            return b"".join(parts)


def too_large(limit: int) -> ApiError:
    return ApiError(413, f"Request body is larger than {limit} bytes.", code="request_too_large")


def check_structure(body: bytes, max_depth: int, max_containers: int) -> None:
    """ApiError 400 when the JSON nests deeper than `max_depth` or holds more than `max_containers`
    objects and arrays (counted outside strings; what is not JSON is left to the parser's 400)."""
    openers = body.count(b"[") + body.count(b"{")
    if openers <= max_depth and openers <= max_containers:
        return  # brackets inside strings included: no need to look closer
    structure = _JSON_STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    if len(structure) // 2 > max_containers:
        raise ApiError(
            400,
            f"The request body holds more than {max_containers} JSON objects and arrays.",
            code="too_many_json_values",
        )
    if nesting_depth(structure) > max_depth:
        raise ApiError(400, f"The request body is nested more than {max_depth} levels deep.", code="too_deeply_nested")


def nesting_depth(structure: bytes) -> int:
    """The deepest nesting of a string of brackets only ([, ], {, }); unbalanced input just counts."""
    if not structure:
        return 0
    marks = np.frombuffer(structure, dtype=np.uint8)
    # '[' and '{' have bit 1 set, ']' and '}' do not: +1 for an opener, -1 for a closer.
    steps = (marks & 2).astype(np.int8) - 1
    return int(np.cumsum(steps, dtype=np.int32).max())


def replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the app the body already read, then passes on what comes after (a disconnect)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
