"""POST /v1/messages: Anthropic's Messages API, cached, so the anthropic SDK (and tools built on it) can
point its `base_url` at the proxy.

The same keys (`x-api-key` as the anthropic SDK sends it, or a bearer token), limits, exact and
semantic cache, usage and cost as chat completions; the API format is part of the cache partition,
so an answer stored for one format never answers the other. Errors are in Anthropic's format;
streams are Anthropic's event sequence, replayed from the cache on a hit.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.gateway.forwarding import ANTHROPIC, forward
from services.gateway.intake import openapi_body, take_in
from services.gateway.schemas import MessagesBody
from shared.contracts.completions import CompletionRequest

router = APIRouter()

MESSAGES_OPENAPI = openapi_body(MessagesBody)


@router.post("/v1/messages", openapi_extra=MESSAGES_OPENAPI)
@router.post("/api/v1/messages", openapi_extra=MESSAGES_OPENAPI, include_in_schema=False)
async def messages(request: Request) -> Response:
    """Answer a Messages request from the cache or the upstream, as Anthropic would."""
    intake = await take_in(request, MessagesBody)
    work = CompletionRequest(**intake.envelope(), stream=bool(intake.body.get("stream", False)), protocol="anthropic")
    return await forward(intake.state, intake.principal, work, ANTHROPIC, intake.started)
