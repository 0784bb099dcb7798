"""What each tenants request does: the logic between the broker handler and the repository.

Knows nothing of the broker: it returns the reply and, for a revocation, the notice every
gateway must hear (the handler publishes it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from psycopg_pool import AsyncConnectionPool

from services.tenants import repository
from services.tenants.keys import display_prefix, generate_key
from shared.contracts.base import ErrorInfo
from shared.contracts.tenants import (
    CreateKey,
    CreateTenant,
    KeyCreated,
    KeyList,
    KeyResolution,
    KeyRevocation,
    KeyRevoked,
    KeySummary,
    ListKeys,
    ListTenants,
    ResolveKey,
    RevokeKey,
    TenantCreated,
    TenantList,
    TenantsRequest,
    api_key_hash,
)

log = logging.getLogger(__name__)

DEV_TENANT = "dev"
DEV_KEY_NAME = "dev key (DEV_API_KEY)"

TenantsReply = TenantCreated | TenantList | KeyCreated | KeyList | KeyRevocation | KeyResolution


class TenantsError(Exception):
    """A request that can't be done as asked; crosses the broker as an error reply with this status."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def info(self) -> ErrorInfo:
        """The error as it crosses the broker."""
        return ErrorInfo(type="invalid_request_error", message=self.message, status=self.status, code=self.code)


@dataclass(frozen=True)
class Outcome:
    """The reply to a request and, when a key was revoked, the notice to broadcast."""

    reply: TenantsReply
    notice: KeyRevoked | None = None


class Registry:
    """Tenants and their keys, over the repository."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def answer(self, request: TenantsRequest) -> Outcome:
        """Do what a request asks; raises TenantsError for what can't be done (unknown tenant, ...)."""
        match request:
            case ResolveKey():
                return Outcome(KeyResolution(key=await repository.resolve_key(self._pool, request.key_hash)))
            case CreateTenant():
                return Outcome(await self.create_tenant(request))
            case ListTenants():
                return Outcome(TenantList(items=await repository.select_tenants(self._pool)))
            case CreateKey():
                return Outcome(await self.create_key(request))
            case ListKeys():
                return Outcome(await self.list_keys(request))
            case RevokeKey():
                return await self.revoke_key(request)
        raise AssertionError(f"unhandled request {type(request).__name__}")

    async def create_tenant(self, request: CreateTenant) -> TenantCreated:
        """A new tenant; 409 when the name is taken."""
        tenant = await repository.insert_tenant(self._pool, request.name)
        if tenant is None:
            raise TenantsError(409, "tenant_exists", f"Tenant '{request.name}' already exists.")
        log.info("created tenant %s", tenant.name)
        return TenantCreated(tenant=tenant)

    async def create_key(self, request: CreateKey) -> KeyCreated:
        """A new key for an existing tenant: stored by hash, returned in plain this once."""
        key = generate_key()
        models = list(dict.fromkeys(request.allowed_models)) if request.allowed_models is not None else None
        summary = await repository.insert_key(
            self._pool,
            tenant=request.tenant,
            name=request.name,
            key_hash=api_key_hash(key),
            prefix=display_prefix(key),
            rpm_limit=request.rpm_limit,
            tokens_per_day=request.tokens_per_day,
            allowed_models=models,
        )
        if summary is None:
            raise _unknown_tenant(request.tenant)
        log.info("created key %s (%s) for tenant %s", summary.id, summary.prefix, summary.tenant)
        return KeyCreated(key=summary, api_key=key)

    async def list_keys(self, request: ListKeys) -> KeyList:
        """Keys, newest first; 404 for a tenant that does not exist (rather than an empty list)."""
        keys = await repository.select_keys(self._pool, request.tenant)
        if not keys and request.tenant is not None and not await repository.tenant_exists(self._pool, request.tenant):
            raise _unknown_tenant(request.tenant)
        return KeyList(items=keys)

    async def revoke_key(self, request: RevokeKey) -> Outcome:
        """Revoke a key; the notice goes out every time, so repeating a revocation re-announces it."""
        revoked = await repository.revoke_key(self._pool, request.key_id)
        if revoked is None:
            raise TenantsError(404, "key_not_found", f"No API key with id '{request.key_id}'.")
        summary, key_hash = revoked
        assert summary.revoked_at is not None
        log.info("revoked key %s (%s) of tenant %s", summary.id, summary.prefix, summary.tenant)
        notice = KeyRevoked(key_id=summary.id, tenant=summary.tenant, key_hash=key_hash, revoked_at=summary.revoked_at)
        return Outcome(KeyRevocation(key=summary), notice)

    async def ensure_dev_key(self, key: str) -> KeySummary:
        """Make `key` (DEV_API_KEY) a key of the tenant 'dev' unless it is a key already (same hash: reused)."""
        summary, created = await repository.ensure_key(
            self._pool, tenant=DEV_TENANT, name=DEV_KEY_NAME, key_hash=api_key_hash(key), prefix=display_prefix(key)
        )
        if summary.revoked_at is not None:
            log.warning("DEV_API_KEY is revoked key %s: requests made with it are refused", summary.id)
        else:
            verb = "created" if created else "reusing"
            log.info("%s DEV_API_KEY as key %s (%s) of tenant %s", verb, summary.id, summary.prefix, summary.tenant)
        return summary


def _unknown_tenant(name: str) -> TenantsError:
    return TenantsError(404, "tenant_not_found", f"No tenant named '{name}'.")
