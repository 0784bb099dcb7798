"""POST /v1/embeddings: OpenAI's embeddings, each input cached exactly.

A batch whose inputs are all cached is answered by the cache worker; otherwise the LLM worker asks
the upstream for the others only and answers with every vector in order. `X-Cache` is HIT only
when no upstream call was made; `X-Cache-Inputs-Cached: k/n` says how many inputs the cache held.
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
from services.gateway.forwarding import OPENAI, count, forward, read_body
from services.gateway.request_log import RequestLine
from services.gateway.schemas import EmbeddingsBody
from services.gateway.state import GatewayState
from shared.contracts.completions import EmbeddingsRequest

router = APIRouter()

EMBEDDINGS_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": EmbeddingsBody.model_json_schema(ref_template="#/components/schemas/{model}")
            }
        },
    }
}


@router.post("/v1/embeddings", openapi_extra=EMBEDDINGS_OPENAPI)
async def embeddings(request: Request) -> Response:
    """Embed the inputs, from the cache where it holds them."""
    state: GatewayState = request.app.state.gateway
    started = time.perf_counter()
    try:
        principal = await authenticate(request)
        body = await read_body(request, state.settings.max_body_bytes, EmbeddingsBody)
        authorize_model(principal, body["model"])
        controls = parse_cache_controls(request.headers)
    except ApiError as exc:
        count(started, exc.status, "ERROR", stream=False, line=RequestLine(state, error=exc.code or exc.type))
        raise
    except Exception:
        count(started, 500, "ERROR", stream=False, line=RequestLine(state, error="internal"))
        raise
    now = time.time()
    work = EmbeddingsRequest(
        request_id=uuid.uuid4().hex,
        tenant=principal.tenant,
        key_id=principal.key_id,
        received_at=now,
        deadline=now + state.settings.request_timeout_seconds,
        body=body,
        controls=controls,
    )
    return await forward(state, principal, work, OPENAI, started)
