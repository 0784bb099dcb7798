"""Operational and catalogue endpoints: health, readiness, metrics, models (in Anthropic's list format for
clients that send `anthropic-version`, as the anthropic SDK does)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.gateway.auth import authenticate
from services.gateway.service_calls import call_service
from services.gateway.state import GatewayState
from shared.contracts.control import HealthQuery, HealthReport, ModelsQuery, ModelsResult
from shared.rpc import RemoteError, RpcTimeout
from shared.topology import SERVICES

log = logging.getLogger(__name__)
router = APIRouter()


def _state(request: Request) -> GatewayState:
    return request.app.state.gateway


@router.api_route("/healthz", methods=["GET", "HEAD"], include_in_schema=False)
async def healthz() -> PlainTextResponse:
    """Alive: the process answers (HEAD too: some load balancers check with it)."""
    return PlainTextResponse("ok\n")


@router.api_route("/readyz", methods=["GET", "HEAD"], include_in_schema=False)
async def readyz(request: Request) -> Response:
    """Ready: this gateway can take requests (its broker connection is up). Asks no other service.

    A readiness probe: were it to fail with another service (the embedder, say), every gateway
    would leave the load balancer at once, though exact hits and misses still work without it.
    The whole system's state is /status.
    """
    broker_ok = await _state(request).worker.ready()
    body = {"ready": broker_ok, "broker": broker_ok}
    return Response(orjson.dumps(body), status_code=200 if broker_ok else 503, media_type="application/json")


@router.get("/status", include_in_schema=False)
async def status(request: Request) -> Response:
    """The whole system: 200 when the broker is up and every service answers, with its Redis and
    Postgres up; 503 naming what is not (for operators and monitors, not for a readiness probe).

    It needs no key, so one answer serves every caller for STATUS_CACHE_SECONDS: a flood of calls
    is not a flood of RPCs to every service."""
    state = _state(request)
    ok, body = await state.status.get(lambda: _system_status(state))
    return Response(body, status_code=200 if ok else 503, media_type="application/json")


async def _system_status(state: GatewayState) -> tuple[bool, bytes]:
    timeout = state.settings.control_timeout_seconds

    async def ask(service: str) -> HealthReport:
        try:
            return await state.rpc.call(state.topology.control(service), HealthQuery(), HealthReport, timeout)
        except (RpcTimeout, RemoteError):
            return HealthReport(service=service, ok=False, checks={"answers": False})

    broker_ok = await state.worker.ready()
    others = [s for s in SERVICES if s != "gateway"]
    reports = await asyncio.gather(*(ask(s) for s in others)) if broker_ok else []
    services = {r.service: {"ok": r.ok, "checks": r.checks} for r in reports}
    ok = broker_ok and all(r.ok for r in reports) and len(reports) == len(others)
    return ok, orjson.dumps({"ok": ok, "broker": broker_ok, "services": services})


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


@router.get("/v1/models")
async def list_models(request: Request) -> Response:
    """The upstreams' models that the caller's key may use, in OpenAI's list format (a key is needed)."""
    principal = await authenticate(request)
    state = _state(request)

    async def fetch() -> ModelsResult:
        return await call_service(
            state, state.topology.control("llm_worker"), ModelsQuery(), ModelsResult, "LLM worker"
        )

    result = await state.models.get(fetch)  # for MODELS_CACHE_SECONDS: not an upstream call per request
    models = [m for m in result.data if not principal.allowed_models or m.get("id") in principal.allowed_models]
    if request.headers.get("anthropic-version"):
        return Response(orjson.dumps(anthropic_model_list(models)), media_type="application/json")
    return Response(orjson.dumps({"object": "list", "data": models}), media_type="application/json")


def anthropic_model_list(models: list[dict[str, Any]]) -> dict[str, Any]:
    """The model list as Anthropic's API answers it: what the anthropic SDK's `models.list()` reads."""
    data = [
        {
            "type": "model",
            "id": model.get("id"),
            "display_name": model.get("display_name") or model.get("id"),
            "created_at": datetime.fromtimestamp(int(model.get("created") or 0), UTC)
            .isoformat()
            .replace("+00:00", "Z"),
        }
        for model in models
    ]
    return {
        "data": data,
        "has_more": False,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }
