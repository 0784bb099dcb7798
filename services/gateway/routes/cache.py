"""The caller's own cache: browse, show, delete and invalidate entries, and report wrong semantic hits.

A tenant's key acts on its own tenant's entries; the admin key on any tenant's (`tenant`, required
where one tenant's entries are meant). The cache worker does the work over RPC (`cache.admin`),
as for the admin API (admin_cache.py), which stays as it was for scripts.

Wrong-hit feedback (`/api/v1/cache/feedback`): a semantic hit whose answer was wrong for the
question asked is reported by its request id (the `X-Request-Id` header), or by the entry
(`X-Cache-Key`) and the question; from then on no cache worker serves that entry for that
question. The reported pairs export as JSONL in `make eval`'s pair format.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from services.gateway.auth import Principal
from services.gateway.errors import ApiError
from services.gateway.routes.stats import admin_or_tenant, epoch_of
from services.gateway.service_calls import build_request, call_service
from services.gateway.state import GatewayState
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
    ListReportedPairs,
    ListServedPairs,
    NearEntries,
    ReportedPair,
    ReportedPairList,
    ReportWrongHit,
    ServedPairList,
    WrongHitReported,
)

router = APIRouter(prefix="/api/v1/cache", tags=["cache"])
Caller = Annotated[Principal, Depends(admin_or_tenant)]
TenantParam = Annotated[
    str | None, Query(min_length=1, max_length=128, description="Admin key only: the tenant to act on.")
]
ResultT = TypeVar("ResultT", bound=BaseModel)

# Below this, "near" is not near: flushing a namespace says what it does.
MIN_NEAR_SIMILARITY = 0.5
# What `make eval` reports these pairs under (`PAIRS=reported.jsonl`).
REPORTED_CATEGORY = "reported_wrong_hit"
# Reported pairs per RPC: texts are kept to 4,000 characters each, so a page stays a few MB, far below
# a broker message's limit; more pairs take more pages.
RPC_PAGE = 100
MAX_LIST = 1000


def own_tenant(principal: Principal, requested: str | None) -> str:
    """The one tenant a request acts on: the key's own, or the admin's pick (required); else 400/403."""
    if principal.is_admin:
        if requested is None:
            raise ApiError(400, "The admin key must name the tenant: add ?tenant=<name>.", param="tenant")
        return requested
    if requested is not None and requested != principal.tenant:
        raise ApiError(403, "This key may only act on its own tenant.", code="tenant_forbidden", param="tenant")
    return principal.tenant


async def ask_cache(request: Request, message: CacheAdminRequest, result_type: type[ResultT]) -> ResultT:
    """One RPC to a cache worker; its error replies keep their status, no answer is a 503."""
    state: GatewayState = request.app.state.gateway
    return await call_service(state, state.topology.cache_admin, message, result_type, "cache worker")


def json_response(result: BaseModel, status: int = 200) -> Response:
    return Response(result.model_dump_json(exclude={"v", "type"}), status_code=status, media_type="application/json")


@router.get("/entries")
async def list_entries(
    request: Request,
    principal: Caller,
    tenant: TenantParam = None,
    namespace: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    q: Annotated[str | None, Query(max_length=1000, description="Text the prompt contains")] = None,
    model: Annotated[str | None, Query(min_length=1, max_length=256)] = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Response:
    """A page of the caller's entries, newest first, with how many match in all."""
    message = ListEntries(
        tenant=own_tenant(principal, tenant),
        namespace=namespace,
        text=q or None,
        model=model,
        created_after=epoch_of(created_after, "created_after") if created_after else None,
        created_before=epoch_of(created_before, "created_before") if created_before else None,
        limit=limit,
        offset=offset,
    )
    return json_response(await ask_cache(request, message, EntryPage))


@router.get("/entries/{entry}")
async def show_entry(request: Request, principal: Caller, entry: str, tenant: TenantParam = None) -> Response:
    """One entry by id or key (`X-Cache-Key`): prompt, model, created, expires, hits, last hit, the answer."""
    message = build_request(GetEntry, tenant=own_tenant(principal, tenant), entry=entry)
    return json_response(await ask_cache(request, message, EntryFound))


@router.delete("/entries/{entry}")
async def delete_entry(request: Request, principal: Caller, entry: str, tenant: TenantParam = None) -> Response:
    """Delete one entry (from Redis and PostgreSQL): it is not served again."""
    message = build_request(DeleteEntry, tenant=own_tenant(principal, tenant), entry=entry)
    result = await ask_cache(request, message, EntriesDeleted)
    if not result.deleted:
        raise ApiError(404, "No such cache entry.", code="entry_not_found")
    return json_response(result)


@router.get("/entries/{entry}/hits")
async def entry_hits(
    request: Request,
    principal: Caller,
    entry: str,
    tenant: TenantParam = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Response:
    """The questions this entry answered by semantic hits (kept `FEEDBACK_WINDOW_SECONDS`), each reportable."""
    message = build_request(ListServedPairs, tenant=own_tenant(principal, tenant), entry=entry, limit=limit)
    return json_response(await ask_cache(request, message, ServedPairList))


class InvalidateNear(BaseModel):
    """POST /api/v1/cache/invalidate: delete (or, with dry_run, list) the entries near a prompt."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1, max_length=100_000)
    min_similarity: float = Field(ge=MIN_NEAR_SIMILARITY, le=1)
    namespace: str | None = Field(default=None, min_length=1, max_length=64)
    model: str | None = Field(default=None, min_length=1, max_length=256)
    dry_run: bool = False
    entry_ids: list[str] | None = Field(default=None, max_length=1000)
    tenant: str | None = Field(default=None, min_length=1, max_length=128)


@router.post("/invalidate")
async def invalidate_near(request: Request, principal: Caller, body: InvalidateNear) -> Response:
    """Entries whose prompt is at least `min_similarity` similar to `prompt`: listed with their similarity
    (`dry_run`), or deleted (only `entry_ids`, when given: the ones a preview showed)."""
    message = build_request(
        DeleteNear,
        tenant=own_tenant(principal, body.tenant),
        prompt=body.prompt,
        min_similarity=body.min_similarity,
        namespace=body.namespace,
        model=body.model,
        dry_run=body.dry_run,
        entry_ids=body.entry_ids,
    )
    if body.dry_run:
        return json_response(await ask_cache(request, message, NearEntries))
    return json_response(await ask_cache(request, message, EntriesDeleted))


@router.delete("/namespaces/{namespace}")
async def flush_namespace(request: Request, principal: Caller, namespace: str, tenant: TenantParam = None) -> Response:
    """Delete every entry of one of the caller's namespaces."""
    if not 1 <= len(namespace) <= 64:
        raise ApiError(400, "A namespace is 1 to 64 characters.", param="namespace")
    message = FlushEntries(tenant=own_tenant(principal, tenant), namespace=namespace)
    return json_response(await ask_cache(request, message, EntriesDeleted))


class WrongHitReport(BaseModel):
    """POST /api/v1/cache/feedback: the semantic hit whose answer was wrong for the question asked.

    Either `request_id` (the hit's `X-Request-Id`), or `cache_key` (its `X-Cache-Key`, or the entry's
    id) with the question: `prompt`, or the request's `messages`.
    """

    model_config = ConfigDict(extra="forbid")

    request_id: str | None = Field(default=None, min_length=1, max_length=128)
    cache_key: str | None = Field(default=None, min_length=1, max_length=128)
    prompt: str | None = Field(default=None, min_length=1, max_length=100_000)
    messages: list[dict[str, Any]] | None = Field(default=None, min_length=1, max_length=1000)
    note: str | None = Field(default=None, max_length=2000)
    tenant: str | None = Field(default=None, min_length=1, max_length=128)


@router.post("/feedback", status_code=201)
async def report_wrong_hit(request: Request, principal: Caller, body: WrongHitReport) -> Response:
    """Report a wrong semantic hit: that (entry, question) pair is never served again, by any cache worker.

    201 when the pair is newly reported, 200 when it already was.
    """
    if (body.request_id is None) == (body.cache_key is None):
        raise ApiError(400, "Give either 'request_id', or 'cache_key' with 'prompt' or 'messages'.", param="request_id")
    if body.cache_key is not None and (body.prompt is None) == (body.messages is None):
        raise ApiError(
            400, "With 'cache_key', give the question: 'prompt' or 'messages' (one of them).", param="prompt"
        )
    message = build_request(
        ReportWrongHit,
        tenant=own_tenant(principal, body.tenant),
        request_id=body.request_id,
        entry=body.cache_key,
        prompt=body.prompt,
        messages=body.messages,
        note=body.note,
    )
    result = await ask_cache(request, message, WrongHitReported)
    return Response(
        orjson.dumps({"object": "cache.feedback", "created": result.created, **result.pair.model_dump()}),
        status_code=201 if result.created else 200,
        media_type="application/json",
    )


@router.get("/feedback")
async def reported_pairs(
    request: Request,
    principal: Caller,
    tenant: TenantParam = None,
    format: Literal["json", "jsonl"] = "json",
    limit: Annotated[
        int | None, Query(ge=1, le=10_000_000, description=f"json: 1 to {MAX_LIST} (100); jsonl: none means all")
    ] = None,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Response:
    """The reported pairs, newest first (admin: every tenant's unless `tenant`); `format=jsonl` exports them
    all, oldest first (or `limit` of them), as `make eval` pairs (`{"a": stored, "b": asked, "same_answer":
    false, "category": ...}`), streamed page by page; `X-Total-Count` says how many pairs there are."""
    scope = tenant if principal.is_admin else own_tenant(principal, tenant)
    if format == "jsonl":
        return await export_jsonl(request, scope, limit, offset)
    if limit is not None and limit > MAX_LIST:
        raise ApiError(400, f"'limit' is at most {MAX_LIST} (format=jsonl exports them all).", param="limit")
    wanted = limit or 100
    items: list[ReportedPair] = []
    total = 0
    async for page in reported_pages(request, scope, wanted, offset, oldest_first=False):
        items += page.items
        total = page.total
    body = {
        "object": "list",
        "data": [item.model_dump() for item in items],
        "total": total,
        "limit": wanted,
        "offset": offset,
    }
    return Response(orjson.dumps(body), media_type="application/json")


async def reported_pages(
    request: Request, tenant: str | None, limit: int | None, offset: int, *, oldest_first: bool
) -> AsyncIterator[ReportedPairList]:
    """Up to `limit` reported pairs (None: all) from `offset`, one RPC page (RPC_PAGE pairs) at a time."""
    left = limit
    while left is None or left > 0:
        size = RPC_PAGE if left is None else min(RPC_PAGE, left)
        message = ListReportedPairs(tenant=tenant, limit=size, offset=offset, oldest_first=oldest_first)
        page = await ask_cache(request, message, ReportedPairList)
        yield page
        if len(page.items) < size:
            return
        offset += size
        left = None if left is None else left - size


async def export_jsonl(request: Request, tenant: str | None, limit: int | None, offset: int) -> Response:
    """The pairs as `make eval` rows, streamed. The first page is asked before the answer starts (a failure
    is still an HTTP error); a failure later cuts the stream off unfinished, which a client sees as an
    error, never as a shorter file."""
    pages = reported_pages(request, tenant, limit, offset, oldest_first=True)
    first = await anext(pages)

    async def lines() -> AsyncIterator[bytes]:
        yield eval_lines(first)
        async for page in pages:
            yield eval_lines(page)

    return StreamingResponse(
        lines(),
        media_type="application/x-ndjson",
        headers={
            "Content-Disposition": 'attachment; filename="reported_pairs.jsonl"',
            "X-Total-Count": str(first.total),
        },
    )


def eval_lines(page: ReportedPairList) -> bytes:
    return b"".join(orjson.dumps(eval_pair(pair)) + b"\n" for pair in page.items if pair.stored_prompt)


def eval_pair(pair: ReportedPair) -> dict[str, Any]:
    """A reported pair as a row of `make eval PAIRS=...`: store `a`, ask `b`, a hit would be wrong.

    Conversations are message lists, as in the conversations file (the earlier turns as they were
    embedded: the most recent 1,500 characters).
    """
    return {
        "id": pair.pair_hash[:16],
        "a": _side(pair.stored_prompt or "", pair.stored_context),
        "b": _side(pair.asked_prompt, pair.asked_context),
        "same_answer": False,
        "category": REPORTED_CATEGORY,
    }


def _side(prompt: str, context: str | None) -> str | list[dict[str, str]]:
    if not context:
        return prompt
    messages: list[dict[str, str]] = []
    for line in context.split("\n"):
        role, separator, text = line.partition(": ")
        if separator and role in ("user", "assistant"):
            messages.append({"role": role, "content": text})
        elif messages:  # a turn of several lines
            messages[-1]["content"] += "\n" + line
    return [*messages, {"role": "user", "content": prompt}]
