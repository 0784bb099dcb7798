"""What each proxied route (chat completions, Messages, embeddings) does with a request before publishing it:
authenticate, read and validate the body, check the key may use the model, read the cache headers. A
refusal here is counted and logged like every answer: the error-rate alert must see a tenants-service
outage's 503s. The limits come after, in `forwarding.forward`: a request refused for a bad header does not
use up the key's quota."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import pydantic
from fastapi import Request

from services.gateway.auth import Principal, authenticate, authorize_model
from services.gateway.cache_controls import parse_cache_controls
from services.gateway.errors import ApiError
from services.gateway.forwarding import count, read_body
from services.gateway.request_log import RequestLine
from services.gateway.state import GatewayState
from shared.contracts.completions import CacheControls


@dataclass(frozen=True)
class Intake:
    """A request the gateway took in: who sent it, its checked body and cache controls, since when."""

    state: GatewayState
    request_id: str
    principal: Principal
    body: dict[str, Any]
    controls: CacheControls
    started: float  # perf_counter, for the answer's latency

    def envelope(self) -> dict[str, Any]:
        """The fields every work request carries: a fresh id, who sent it, when, and until when an answer is
        worth anything (the gateway's timeout)."""
        now = time.time()
        return {
            "request_id": self.request_id,
            "tenant": self.principal.tenant,
            "key_id": self.principal.key_id,
            "received_at": now,
            "deadline": now + self.state.settings.request_timeout_seconds,
            "body": self.body,
            "controls": self.controls,
        }


async def take_in(request: Request, schema: type[pydantic.BaseModel]) -> Intake:
    """The request, authenticated and checked against `schema`; an ApiError (counted) when it is refused."""
    state: GatewayState = request.app.state.gateway
    started = time.perf_counter()
    request_id = getattr(request.state, "request_id", None) or uuid.uuid4().hex  # the gate's
    principal: Principal | None = None
    try:
        principal = await authenticate(request)
        body = await read_body(request, state.settings.max_body_bytes, schema)
        authorize_model(principal, body["model"])
        controls = parse_cache_controls(request.headers)
    except ApiError as exc:
        tenant = principal.tenant if principal is not None else None
        count(
            started,
            exc.status,
            "ERROR",
            stream=False,
            line=RequestLine(state, request_id, tenant, error=exc.code or exc.type),
        )
        exc.headers = {**exc.headers, "X-Request-Id": request_id}
        raise  # the error handler writes it in the route's API format (by the path)
    except Exception:
        count(started, 500, "ERROR", stream=False, line=RequestLine(state, request_id, error="internal"))
        raise
    return Intake(state, request_id, principal, body, controls, started)


def openapi_body(schema: type[pydantic.BaseModel]) -> dict[str, Any]:
    """The route's request body in the OpenAPI document (the route reads it itself, after the gate)."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": schema.model_json_schema(ref_template="#/components/schemas/{model}")}
            },
        }
    }
