"""Browsing and invalidation of a tenant's entries (the admin API's cache side). Knows nothing of the broker."""

from __future__ import annotations

from services.cache_worker import keys
from services.cache_worker.entry_store import EntryFilter, EntryStore
from services.cache_worker.exact_store import ExactStore
from services.cache_worker.feedback import NewReport, ReportedPairs, ServedPairs
from services.cache_worker.lookup import Embed
from shared.contracts.base import ErrorInfo, ErrorReply
from shared.contracts.cache_admin import (
    CacheAdminRequest,
    DeleteEntry,
    DeleteNear,
    EntriesDeleted,
    EntryDetail,
    EntryFound,
    EntryPage,
    EntrySummary,
    FlushEntries,
    GetEntry,
    ListEntries,
    ListReportedPairs,
    ListServedPairs,
    NearEntries,
    NearEntry,
    ReportedPairList,
    ReportWrongHit,
    ServedPairList,
    WrongHitReported,
)

AdminAnswer = (
    EntryPage | EntryFound | EntriesDeleted | NearEntries | WrongHitReported | ReportedPairList | ServedPairList
)
# How long a report by request id waits for the hit's record (semantic hits are written in batches).
SERVED_WAIT_SECONDS = 2.0


def _error(status: int, message: str, type: str = "invalid_request_error") -> ErrorReply:
    return ErrorReply(error=ErrorInfo(type=type, message=message, status=status))


class CacheAdmin:
    """Answers one admin request; deletions remove entries from PostgreSQL and Redis alike."""

    def __init__(
        self,
        exact: ExactStore,
        entries: EntryStore,
        embed: Embed,
        served: ServedPairs | None = None,
        reported: ReportedPairs | None = None,
    ) -> None:
        self._exact = exact
        self._entries = entries
        self._embed = embed
        self._served = served
        self._reported = reported

    async def handle(self, request: CacheAdminRequest) -> AdminAnswer | ErrorReply:
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
                # only the tenant's own (Redis keys don't name their tenant).
                if not await self._exact.owns(request.tenant, request.entry):
                    return EntriesDeleted(deleted=0)
                deleted = await self._exact.delete(request.tenant, [request.entry])
                if self._served is not None:
                    await self._served.forget_entries(request.tenant, [request.entry])
                return EntriesDeleted(deleted=deleted, keys=[request.entry] if deleted else [])
            return await self._deleted(request.tenant, keys)
        if isinstance(request, DeleteNear):
            vectors, _ = await self._embed([request.prompt])
            vector = vectors[0]
            where = EntryFilter(tenant=request.tenant, namespace=request.namespace, model=request.model)
            if request.dry_run:
                rows = await self._entries.near(where, vector, request.min_similarity, request.limit)
                return NearEntries(items=[NearEntry(**row) for row in rows])
            return await self._deleted(
                request.tenant,
                await self._entries.delete_near(where, vector, request.min_similarity, request.entry_ids),
            )
        if isinstance(request, ReportWrongHit | ListReportedPairs | ListServedPairs):
            return await self._feedback(request)
        if isinstance(request, FlushEntries):
            return await self._flush(request)
        return ErrorReply(error=ErrorInfo(type="invalid_request_error", message="Unknown admin request.", status=400))

    async def _feedback(
        self, request: ReportWrongHit | ListReportedPairs | ListServedPairs
    ) -> WrongHitReported | ReportedPairList | ServedPairList | ErrorReply:
        if self._served is None or self._reported is None:
            return _error(503, "Wrong-hit feedback is not available on this cache worker.", "service_unavailable")
        if isinstance(request, ListReportedPairs):
            items, total = await self._reported.page(
                request.tenant, request.limit, request.offset, request.oldest_first
            )
            return ReportedPairList(items=items, total=total)
        if isinstance(request, ListServedPairs):
            row = await self._entries.find(request.tenant, request.entry)
            if row is None:
                return _error(404, "No such cache entry.", "not_found_error")
            return ServedPairList(items=await self._served.for_entry(request.tenant, row["key"], request.limit))
        return await self._report(request, self._served, self._reported)

    async def _report(
        self, request: ReportWrongHit, served: ServedPairs, reported: ReportedPairs
    ) -> WrongHitReported | ErrorReply:
        """Report by the hit's request id, or by the entry and the question asked."""
        if request.request_id is not None:
            found = await served.find(request.tenant, request.request_id, SERVED_WAIT_SECONDS)
            if found is None:
                days = served.window_seconds / 86400
                return _error(
                    404,
                    f"No semantic hit with request id '{request.request_id}' in the last {days:g} days: only"
                    " semantic hits can be reported (an exact hit is the question's own answer; a request sent"
                    " with Cache-Control: no-store leaves none: report it by cache_key and its question).",
                    "not_found_error",
                )
            hit = found.pair
            entry = await self._entries.find(request.tenant, hit.entry_key)
            new = NewReport(
                tenant=request.tenant,
                entry_key=hit.entry_key,
                entry_id=hit.entry_id,
                stored_prompt=entry["prompt"] if entry else None,
                stored_context=entry["context_text"] if entry else None,
                asked_prompt=hit.asked_prompt,
                asked_context=hit.asked_context,
                similarity=hit.similarity,
                request_id=hit.request_id,
                note=request.note,
                namespace=found.namespace or (entry["namespace"] if entry else None),
                digest=found.digest,
            )
        else:
            if request.entry is None or (request.prompt is None) == (request.messages is None):
                return _error(
                    400, "Name the semantic hit: its request_id, or the entry (id or key) and the prompt or messages."
                )
            if request.messages is not None:
                body = {"messages": request.messages}
                prompt, context = keys.semantic_prompt(body), keys.conversation(body).text
            else:
                prompt, context = (request.prompt or "").strip(), None
            if not prompt:
                return _error(400, "No question: give a prompt, or messages that end with a user message with text.")
            entry = await self._entries.find(request.tenant, request.entry)
            if entry is None:
                return _error(404, "No such cache entry.", "not_found_error")
            if prompt == entry["prompt"] and context == entry["context_text"]:
                return _error(400, "That is the entry's own question: delete the entry if its answer is wrong.")
            new = NewReport(
                tenant=request.tenant,
                entry_key=entry["key"],
                entry_id=entry["id"],
                stored_prompt=entry["prompt"],
                stored_context=entry["context_text"],
                asked_prompt=prompt,
                asked_context=context,
                similarity=None,
                request_id=None,
                note=request.note,
                namespace=entry["namespace"],
            )
        pair, created = await reported.report(new)
        return WrongHitReported(pair=pair, created=created)

    async def _flush(self, request: FlushEntries) -> EntriesDeleted:
        """Delete a tenant's entries (or one namespace's), and the wrong-hit feedback about them: the
        questions their semantic hits answered and the pairs reported, in PostgreSQL and Redis."""
        where = EntryFilter(tenant=request.tenant, namespace=request.namespace)
        keys = await self._entries.delete_matching(where)
        await self._exact.delete(request.tenant, keys)
        if request.namespace is not None:
            # Also what only Redis holds (noted under its namespace when PostgreSQL did not take it).
            only_in_redis = set(await self._exact.delete_redis_only(request.tenant, request.namespace))
        else:
            # The whole tenant: also what only Redis holds (Redis does not know an entry's namespace).
            only_in_redis = set(await self._exact.delete_tenant(request.tenant))
        deleted = keys + sorted(only_in_redis - set(keys))
        if self._served is not None:
            await self._served.forget_flushed(request.tenant, request.namespace, deleted)
        if self._reported is not None:
            await self._reported.forget_flushed(request.tenant, request.namespace, deleted)
        return EntriesDeleted(deleted=len(deleted), keys=deleted)

    async def _deleted(self, tenant: str, keys: list[str]) -> EntriesDeleted:
        """Entries deleted from PostgreSQL: from Redis too, with the questions their semantic hits answered."""
        await self._exact.delete(tenant, keys)
        if self._served is not None:
            await self._served.forget_entries(tenant, keys)
        return EntriesDeleted(deleted=len(keys), keys=keys)
