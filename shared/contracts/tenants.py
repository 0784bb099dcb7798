"""Tenants and API keys (`tenants.rpc`, RPC: gateway, CLI -> tenants service) and `KeyRevoked`
(fanout: tenants service -> every gateway).
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Literal

from pydantic import BaseModel, Field, TypeAdapter

from shared.contracts.base import Contract

TENANT_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"  # a slug: it is the tenant's id


KEY_HASH_PATTERN = r"^[0-9a-f]{64}$"


KEY_ID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


INT4_MAX = 2**31 - 1  # the limits are PostgreSQL `integer` columns


# Text the tenants database keeps: PostgreSQL's text holds any character but NUL (a NUL is a 400 at the
# edge, not a database error).
NO_NUL = r"^[^\x00]*$"


ModelName = Annotated[str, Field(min_length=1, max_length=256, pattern=NO_NUL)]


def api_key_hash(key: str) -> str:
    """What `ResolveKey.key_hash` and the keys table hold: the hex SHA-256 of the plain key.

    Unsalted on purpose: keys are 240 random bits, so there is nothing to brute-force, and an
    unsalted hash can be looked up by equality (one index probe per resolution).
    """
    return hashlib.sha256(key.encode()).hexdigest()


class CreateTenant(Contract):
    """Create a tenant; its name is its id (a slug)."""

    type: Literal["create_tenant"] = "create_tenant"
    name: str = Field(pattern=TENANT_NAME_PATTERN)


class ListTenants(Contract):
    """Every tenant, oldest first."""

    type: Literal["list_tenants"] = "list_tenants"


class CreateKey(Contract):
    """Create an API key for a tenant, with optional limits (None: unlimited) and model list (None: any)."""

    type: Literal["create_key"] = "create_key"
    tenant: str = Field(pattern=TENANT_NAME_PATTERN)
    name: str = Field(min_length=1, max_length=200, pattern=NO_NUL)
    rpm_limit: int | None = Field(default=None, ge=1, le=INT4_MAX)
    tokens_per_day: int | None = Field(default=None, ge=1, le=INT4_MAX)
    allowed_models: list[ModelName] | None = Field(default=None, min_length=1, max_length=1000)


class ListKeys(Contract):
    """The keys of one tenant (None: of every tenant), newest first; revoked keys included."""

    type: Literal["list_keys"] = "list_keys"
    tenant: str | None = Field(default=None, pattern=TENANT_NAME_PATTERN)


class RevokeKey(Contract):
    """Revoke a key for good (idempotent: revoking a revoked key keeps its first revocation time)."""

    type: Literal["revoke_key"] = "revoke_key"
    key_id: str = Field(pattern=KEY_ID_PATTERN)


class ResolveKey(Contract):
    """Ask who a key belongs to, by its hash (`api_key_hash`): the gateway's question on every cache miss."""

    type: Literal["resolve_key"] = "resolve_key"
    key_hash: str = Field(pattern=KEY_HASH_PATTERN)


TenantsRequest = Annotated[
    CreateTenant | ListTenants | CreateKey | ListKeys | RevokeKey | ResolveKey, Field(discriminator="type")
]


TENANTS_ADAPTER: TypeAdapter[TenantsRequest] = TypeAdapter(TenantsRequest)


class TenantInfo(BaseModel):
    """A tenant as listings show it."""

    name: str
    created_at: float  # epoch seconds


class KeySummary(BaseModel):
    """What listings show of a key: never its hash, never the key."""

    id: str
    tenant: str
    name: str
    prefix: str  # the key's first characters, for people to recognise it by
    created_at: float  # epoch seconds
    revoked_at: float | None = None
    last_used_at: float | None = None  # approximate: refreshed at most once a minute, on resolution
    rpm_limit: int | None = None
    tokens_per_day: int | None = None
    allowed_models: list[str] | None = None


class KeyInfo(BaseModel):
    """What a gateway needs to admit a request made with a valid key."""

    key_id: str
    tenant: str
    rpm_limit: int | None = None
    tokens_per_day: int | None = None
    allowed_models: list[str] | None = None  # None: any model


class TenantCreated(Contract):
    type: Literal["tenant_created"] = "tenant_created"
    tenant: TenantInfo


class TenantList(Contract):
    type: Literal["tenant_list"] = "tenant_list"
    items: list[TenantInfo]


class KeyCreated(Contract):
    """A new key: the only message that ever carries the plain key."""

    type: Literal["key_created"] = "key_created"
    key: KeySummary
    api_key: str


class KeyList(Contract):
    type: Literal["key_list"] = "key_list"
    items: list[KeySummary]


class KeyRevocation(Contract):
    """The answer to RevokeKey: the key as it now stands (revoked_at set)."""

    type: Literal["key_revocation"] = "key_revocation"
    key: KeySummary


class KeyResolution(Contract):
    """The answer to ResolveKey: the key's owner and limits, or None for an unknown or revoked key."""

    type: Literal["key_resolution"] = "key_resolution"
    key: KeyInfo | None = None


class KeyRevoked(Contract):
    """Broadcast on the key-revocations fanout exchange: every gateway drops the key from its cache."""

    type: Literal["key_revoked"] = "key_revoked"
    key_id: str
    tenant: str
    key_hash: str = Field(pattern=KEY_HASH_PATTERN)
    revoked_at: float
