"""POST /v1/messages: Anthropic's Messages API, cached, so the anthropic SDK (and tools built on it) can
point its `base_url` at the proxy.

The same keys (`x-api-key` as the anthropic SDK sends it, or a bearer token), limits, exact and
semantic cache, usage and cost as chat completions; the API format is part of the cache partition,
so an answer stored for one format never answers the other. Errors are in Anthropic's format;
streams are Anthropic's event sequence, replayed from the cache on a hit.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.gateway.auth import authenticate, authorize_model
from services.gateway.cache_controls import parse_cache_controls
from services.gateway.errors import ApiError
from services.gateway.forwarding import ANTHROPIC, count, forward, read_body
from services.gateway.request_log import RequestLine
from services.gateway.schemas import MessagesBody
from services.gateway.state import GatewayState
from shared.contracts.completions import CompletionRequest

router = APIRouter()

MESSAGES_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": MessagesBody.model_json_schema(ref_template="#/components/schemas/{model}")}
        },
    }
}


@router.post("/v1/messages", openapi_extra=MESSAGES_OPENAPI)
@router.post("/api/v1/messages", openapi_extra=MESSAGES_OPENAPI, include_in_schema=False)
async def messages(request: Request) -> Response:
    """Answer a Messages request from the cache or the upstream, as Anthropic would."""
    state: GatewayState = request.app.state.gateway
    started = time.perf_counter()
    try:
        principal = await authenticate(request)
        body = await read_body(request, state.settings.max_body_bytes, MessagesBody)
        authorize_model(principal, body["model"])
        controls = parse_cache_controls(request.headers)
    except ApiError as exc:
        count(started, exc.status, "ERROR", stream=False, line=RequestLine(state, error=exc.code or exc.type))
        raise  # the error handler writes it in Anthropic's format (by the path)
    except Exception:
        count(started, 500, "ERROR", stream=False, line=RequestLine(state, error="internal"))
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
        protocol="anthropic",
    )
    return await forward(state, principal, completion_request, ANTHROPIC, started)
