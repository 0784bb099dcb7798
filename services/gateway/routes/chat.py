"""POST /v1/chat/completions (and the old /api/v1/chat/completions): OpenAI's chat completions, cached.

Authenticate, validate, admit, then publish a CompletionRequest and answer from its replies
(`forwarding`): JSON, or server-sent events for `stream: true`.
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
from services.gateway.forwarding import OPENAI, cache_headers, count, forward, read_body
from services.gateway.request_log import RequestLine
from services.gateway.schemas import ChatCompletionBody
from services.gateway.state import GatewayState
from shared.contracts.completions import CompletionRequest

__all__ = ["cache_headers", "router"]

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
        body = await read_body(request, state.settings.max_body_bytes, ChatCompletionBody)
        authorize_model(principal, body["model"])
        # Before admission (in `forward`): a request refused for a bad header does not use up the key's quota.
        controls = parse_cache_controls(request.headers)
    except ApiError as exc:
        # Counted like every other answer: the error-rate alert must see a tenants-service outage's 503s.
        count(started, exc.status, "ERROR", stream=False, line=RequestLine(state, error=exc.code or exc.type))
        raise
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
    )
    return await forward(state, principal, completion_request, OPENAI, started)
