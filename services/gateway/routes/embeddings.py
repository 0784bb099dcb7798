"""POST /v1/embeddings: OpenAI's embeddings, each input cached exactly.

A batch whose inputs are all cached is answered by the cache worker; otherwise the LLM worker asks
the upstream for the others only and answers with every vector in order. `X-Cache` is HIT only
when no upstream call was made; `X-Cache-Inputs-Cached: k/n` says how many inputs the cache held.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.gateway.forwarding import OPENAI, forward
from services.gateway.intake import openapi_body, take_in
from services.gateway.schemas import EmbeddingsBody
from shared.contracts.completions import EmbeddingsRequest

router = APIRouter()

EMBEDDINGS_OPENAPI = openapi_body(EmbeddingsBody)


@router.post("/v1/embeddings", openapi_extra=EMBEDDINGS_OPENAPI)
async def embeddings(request: Request) -> Response:
    """Embed the inputs, from the cache where it holds them."""
    intake = await take_in(request, EmbeddingsBody)
    work = EmbeddingsRequest(**intake.envelope())
    return await forward(intake.state, intake.principal, work, OPENAI, intake.started)
