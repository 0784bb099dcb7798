"""Who is calling: the tenant behind a request's API key, and whether it may use the admin API."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field

from fastapi import Request

from services.gateway.errors import ApiError
from services.gateway.state import GatewayState


@dataclass(frozen=True)
class Principal:
    """The caller of a request, as far as the gateway knows."""

    tenant: str
    key_id: str | None = None
    allowed_models: frozenset[str] = field(default_factory=frozenset)  # empty: any model
    is_admin: bool = False


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def require_admin(request: Request) -> Principal:
    """FastAPI dependency of every admin endpoint: the admin key from settings, or 401/403."""
    state: GatewayState = request.app.state.gateway
    admin_key = state.settings.admin_api_key
    token = bearer_token(request)
    if not admin_key:
        raise ApiError(403, "The admin API is disabled: set ADMIN_API_KEY.", code="admin_disabled")
    if token is None:
        raise ApiError(401, "Missing admin API key (Authorization: Bearer ...).", code="missing_api_key")
    if not hmac.compare_digest(token.encode(), admin_key.encode()):
        raise ApiError(403, "This key may not use the admin API.", code="not_admin")
    return Principal(tenant="*", is_admin=True)


async def authenticate(request: Request) -> Principal:
    """The principal of an API request (until API keys exist: the configured default tenant)."""
    state: GatewayState = request.app.state.gateway
    return Principal(tenant=state.settings.default_tenant)
