"""Who the caller is (GET /api/v1/me): what the dashboard asks after sign-in, and a key check for scripts."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends
from fastapi.responses import Response

from services.gateway.auth import Principal
from services.gateway.routes.stats import admin_or_tenant

router = APIRouter()


@router.get("/api/v1/me")
async def whoami(principal: Annotated[Principal, Depends(admin_or_tenant)]) -> Response:
    """The caller's tenant and key (never the key itself), or `admin: true` for the admin key; 401 if invalid."""
    body: dict[str, Any] = {"object": "session", "admin": principal.is_admin}
    if not principal.is_admin:
        body |= {
            "tenant": principal.tenant,
            "key_id": principal.key_id,
            "rpm_limit": principal.rpm_limit,
            "tokens_per_day": principal.tokens_per_day,
            "allowed_models": sorted(principal.allowed_models) or None,
        }
    return Response(orjson.dumps(body), media_type="application/json", headers={"Cache-Control": "no-store"})
