"""Admin API for tenants and API keys: create and list tenants; create (shown once), list and revoke keys.

Every route needs the admin key (a tenant's key gets 403); the tenants service does the work over
RPC (`tenants.rpc`). A revocation is announced to every gateway before this API answers.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict

from services.gateway.auth import require_admin
from services.gateway.service_calls import build_request, call_service
from services.gateway.state import GatewayState
from shared.contracts.tenants import (
    CreateKey,
    CreateTenant,
    KeyCreated,
    KeyList,
    KeyRevocation,
    KeySummary,
    ListKeys,
    ListTenants,
    RevokeKey,
    TenantCreated,
    TenantInfo,
    TenantList,
    TenantsRequest,
)

router = APIRouter(prefix="/api/v1/admin", tags=["admin: tenants and keys"], dependencies=[Depends(require_admin)])

ResultT = TypeVar("ResultT", bound=BaseModel)


class NewTenant(BaseModel):
    """POST /api/v1/admin/tenants: the tenant's name is its id (lowercase letters, digits, '-', '_')."""

    model_config = ConfigDict(extra="forbid")

    name: str


class NewKey(BaseModel):
    """POST /api/v1/admin/keys: limits are per key (None: unlimited); allowed_models None: any model."""

    model_config = ConfigDict(extra="forbid")

    tenant: str
    name: str
    rpm_limit: int | None = None
    tokens_per_day: int | None = None
    allowed_models: list[str] | None = None


@router.post("/tenants", status_code=201)
async def create_tenant(request: Request, body: NewTenant) -> Response:
    """Create a tenant (409 if it exists)."""
    result = await _ask(request, build_request(CreateTenant, name=body.name), TenantCreated)
    return _json(_tenant(result.tenant), 201)


@router.get("/tenants")
async def list_tenants(request: Request) -> Response:
    """Every tenant, oldest first."""
    result = await _ask(request, ListTenants(), TenantList)
    return _json({"object": "list", "data": [_tenant(tenant) for tenant in result.items]})


@router.post("/keys", status_code=201)
async def create_key(request: Request, body: NewKey) -> Response:
    """Create an API key; the answer carries the key itself (`key`) this once: only its hash is kept."""
    message = build_request(CreateKey, **body.model_dump())
    result = await _ask(request, message, KeyCreated)
    return _json({**_key(result.key), "key": result.api_key}, 201)


@router.get("/keys")
async def list_keys(
    request: Request, tenant: Annotated[str | None, Query(description="Only this tenant's keys.")] = None
) -> Response:
    """Keys, newest first, revoked ones included; never the keys themselves nor their hashes."""
    result = await _ask(request, build_request(ListKeys, tenant=tenant), KeyList)
    return _json({"object": "list", "data": [_key(key) for key in result.items]})


@router.delete("/keys/{key_id}")
async def revoke_key(request: Request, key_id: str) -> Response:
    """Revoke a key: refused by every gateway within moments (idempotent)."""
    result = await _ask(request, build_request(RevokeKey, key_id=key_id), KeyRevocation)
    return _json(_key(result.key))


async def _ask(request: Request, message: TenantsRequest, result_type: type[ResultT]) -> ResultT:
    """One RPC to the tenants service; its error replies keep their status, no answer is a 503."""
    state: GatewayState = request.app.state.gateway
    return await call_service(state, state.topology.tenants_rpc, message, result_type, "tenants service")


def _tenant(tenant: TenantInfo) -> dict[str, Any]:
    return {"object": "tenant", "id": tenant.name, "name": tenant.name, "created_at": int(tenant.created_at)}


def _key(key: KeySummary) -> dict[str, Any]:
    return {
        "object": "api_key",
        "id": key.id,
        "tenant": key.tenant,
        "name": key.name,
        "prefix": key.prefix,
        "created_at": int(key.created_at),
        "revoked_at": _epoch(key.revoked_at),
        "last_used_at": _epoch(key.last_used_at),
        "rpm_limit": key.rpm_limit,
        "tokens_per_day": key.tokens_per_day,
        "allowed_models": key.allowed_models,
    }


def _epoch(value: float | None) -> int | None:
    return int(value) if value is not None else None


def _json(body: dict[str, Any], status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")
