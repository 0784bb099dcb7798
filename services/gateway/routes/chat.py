"""POST /v1/chat/completions (and the old /api/v1/chat/completions): OpenAI's chat completions, cached.

Authenticate, validate, admit, then publish a CompletionRequest and answer from its replies
(`forwarding`): JSON, or server-sent events for `stream: true`.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.gateway.forwarding import OPENAI, cache_headers, forward
from services.gateway.intake import openapi_body, take_in
from services.gateway.schemas import ChatCompletionBody
from shared.contracts.completions import CompletionRequest

__all__ = ["cache_headers", "router"]

router = APIRouter()

CHAT_OPENAPI = openapi_body(ChatCompletionBody)


@router.post("/v1/chat/completions", openapi_extra=CHAT_OPENAPI)
@router.post("/api/v1/chat/completions", openapi_extra=CHAT_OPENAPI, include_in_schema=False)
async def chat_completions(request: Request) -> Response:
    """Answer a chat completion from the cache or the upstream, as OpenAI would."""
    intake = await take_in(request, ChatCompletionBody)
    work = CompletionRequest(**intake.envelope(), stream=bool(intake.body.get("stream", False)))
    return await forward(intake.state, intake.principal, work, OPENAI, intake.started)
