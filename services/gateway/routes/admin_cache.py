"""Admin API for cache entries: browse, show, invalidate (one, near a prompt, a namespace, a tenant).

Every route needs the admin key; the cache worker does the work over RPC (`cache.admin`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from services.gateway.auth import Principal, require_admin
from services.gateway.routes.cache import ask_cache, json_response
from services.gateway.routes.stats import epoch_of
from shared.contracts.cache_admin import (
    CacheAdminRequest,
    DeleteEntry,
    DeleteNear,
    EntriesDeleted,
    EntryFound,
    EntryPage,
    FlushEntries,
    GetEntry,
    ListEntries,
)

router = APIRouter(prefix="/api/v1/admin/cache", tags=["admin: cache"])
Admin = Annotated[Principal, Depends(require_admin)]
Tenant = Annotated[str, Query(min_length=1, max_length=128, description="The tenant whose entries to act on.")]
ResultT = TypeVar("ResultT", bound=BaseModel)


class InvalidateNear(BaseModel):
    """Delete every entry of a tenant whose prompt is semantically near `prompt`."""

    tenant: str = Field(min_length=1, max_length=128)
    prompt: str = Field(min_length=1, max_length=100_000)
    min_similarity: float = Field(ge=0, le=1)
    namespace: str | None = Field(default=None, max_length=64)
    model: str | None = Field(default=None, max_length=256)


async def _ask(request: Request, message: CacheAdminRequest, result_type: type[ResultT]) -> Response:
    return json_response(await ask_cache(request, message, result_type))


@router.get("/entries")
async def list_entries(
    request: Request,
    _: Admin,
    tenant: Tenant,
    namespace: str | None = None,
    q: Annotated[str | None, Query(max_length=1000, description="Text the prompt contains")] = None,
    model: str | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    """A page of the tenant's entries, newest first."""
    message = ListEntries(
        tenant=tenant,
        namespace=namespace,
        text=q,
        model=model,
        created_after=epoch_of(created_after, "created_after") if created_after else None,
        created_before=epoch_of(created_before, "created_before") if created_before else None,
        limit=limit,
        offset=offset,
    )
    return await _ask(request, message, EntryPage)


@router.get("/entries/{entry}")
async def show_entry(request: Request, _: Admin, entry: str, tenant: Tenant) -> Response:
    """One entry by id or key (the X-Cache-Key header): prompt, model, created, expires, hits, the answer."""
    return await _ask(request, GetEntry(tenant=tenant, entry=entry), EntryFound)


@router.delete("/entries/{entry}")
async def delete_entry(request: Request, _: Admin, entry: str, tenant: Tenant) -> Response:
    """Delete one entry by id or key."""
    return await _ask(request, DeleteEntry(tenant=tenant, entry=entry), EntriesDeleted)


@router.post("/invalidate")
async def invalidate_near(request: Request, _: Admin, body: InvalidateNear) -> Response:
    """Delete every entry semantically near a prompt (similarity at least `min_similarity`)."""
    return await _ask(request, DeleteNear(**body.model_dump()), EntriesDeleted)


@router.delete("/namespaces/{namespace}")
async def flush_namespace(request: Request, _: Admin, namespace: str, tenant: Tenant) -> Response:
    """Delete every entry of one namespace of a tenant."""
    return await _ask(request, FlushEntries(tenant=tenant, namespace=namespace), EntriesDeleted)


@router.delete("/tenants/{tenant}")
async def flush_tenant(request: Request, _: Admin, tenant: str) -> Response:
    """Delete every entry of a tenant."""
    return await _ask(request, FlushEntries(tenant=tenant), EntriesDeleted)
