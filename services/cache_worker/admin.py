"""Browsing and invalidation of a tenant's entries (the admin API's cache side). Knows nothing of the broker."""

from __future__ import annotations

from services.cache_worker.entry_store import EntryFilter, EntryStore
from services.cache_worker.exact_store import ExactStore
from services.cache_worker.lookup import Embed
from shared.contracts import (
    CacheAdminRequest,
    DeleteEntry,
    DeleteNear,
    EntriesDeleted,
    EntryDetail,
    EntryFound,
    EntryPage,
    EntrySummary,
    ErrorInfo,
    ErrorReply,
    FlushEntries,
    GetEntry,
    ListEntries,
)


class CacheAdmin:
    """Answers one admin request; deletions remove entries from PostgreSQL and Redis alike."""

    def __init__(self, exact: ExactStore, entries: EntryStore, embed: Embed) -> None:
        self._exact = exact
        self._entries = entries
        self._embed = embed

    async def handle(self, request: CacheAdminRequest) -> EntryPage | EntryFound | EntriesDeleted | ErrorReply:
        if isinstance(request, ListEntries):
            where = EntryFilter(
                tenant=request.tenant,
                namespace=request.namespace,
                text=request.text,
                model=request.model,
                created_after=request.created_after,
                created_before=request.created_before,
            )
            rows, total = await self._entries.page(where, request.limit, request.offset)
            return EntryPage(
                items=[EntrySummary(**row) for row in rows], total=total, limit=request.limit, offset=request.offset
            )
        if isinstance(request, GetEntry):
            row = await self._entries.find(request.tenant, request.entry)
            if row is None:
                return ErrorReply(error=ErrorInfo(type="not_found_error", message="No such cache entry.", status=404))
            return EntryFound(entry=EntryDetail(**row))
        if isinstance(request, DeleteEntry):
            keys = await self._entries.delete_one(request.tenant, request.entry)
            if not keys:
                # An entry Postgres never saw (it was down when the answer was stored) may still be in Redis;
                # only if it is this tenant's (a key of another tenant's entry must not delete it).
                deleted = await self._exact.delete_tenants(request.tenant, request.entry)
                return EntriesDeleted(deleted=deleted, keys=[request.entry] if deleted else [])
            return await self._deleted(request.tenant, keys)
        if isinstance(request, DeleteNear):
            vectors, _ = await self._embed([request.prompt])
            vector = vectors[0]
            where = EntryFilter(tenant=request.tenant, namespace=request.namespace, model=request.model)
            return await self._deleted(
                request.tenant, await self._entries.delete_near(where, vector, request.min_similarity)
            )
        if isinstance(request, FlushEntries):
            where = EntryFilter(tenant=request.tenant, namespace=request.namespace)
            keys = await self._entries.delete_matching(where)
            if request.namespace is not None:
                # Also what only Redis holds (noted under its namespace when PostgreSQL did not take it).
                await self._exact.delete(request.tenant, keys)
                only_in_redis = set(await self._exact.delete_redis_only(request.tenant, request.namespace)) - set(keys)
                return EntriesDeleted(deleted=len(keys) + len(only_in_redis), keys=keys + sorted(only_in_redis))
            # The whole tenant: also what only Redis holds (Redis does not know an entry's namespace).
            await self._exact.delete(request.tenant, keys)
            only_in_redis = set(await self._exact.delete_tenant(request.tenant)) - set(keys)
            return EntriesDeleted(deleted=len(keys) + len(only_in_redis), keys=keys + sorted(only_in_redis))
        return ErrorReply(error=ErrorInfo(type="invalid_request_error", message="Unknown admin request.", status=400))

    async def _deleted(self, tenant: str, keys: list[str]) -> EntriesDeleted:
        await self._exact.delete(tenant, keys)
        return EntriesDeleted(deleted=len(keys), keys=keys)
