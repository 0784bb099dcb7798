"""Cache browsing, invalidation and wrong-hit reports (`cache.admin`, RPC: gateway -> cache worker)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, TypeAdapter

from shared.contracts.base import Contract


class ListEntries(Contract):
    """A page of a tenant's entries, newest first, optionally filtered."""

    type: Literal["list_entries"] = "list_entries"
    tenant: str
    namespace: str | None = None
    text: str | None = None  # substring of the prompt (case-insensitive)
    model: str | None = None
    created_after: float | None = None
    created_before: float | None = None
    limit: int = Field(default=50, ge=1, le=500)
    offset: int = Field(default=0, ge=0)


class GetEntry(Contract):
    """One entry, by id or exact key."""

    type: Literal["get_entry"] = "get_entry"
    tenant: str
    entry: str


class DeleteEntry(Contract):
    """Delete one entry, by id or exact key."""

    type: Literal["delete_entry"] = "delete_entry"
    tenant: str
    entry: str


class DeleteNear(Contract):
    """Delete every entry whose prompt is semantically near `prompt` (similarity >= min_similarity).

    `dry_run` deletes nothing and answers NearEntries (what would go, with each similarity);
    `entry_ids` limits the deletion to those entries (the ones a preview showed).
    """

    type: Literal["delete_near"] = "delete_near"
    tenant: str
    prompt: str = Field(min_length=1)
    min_similarity: float = Field(ge=0, le=1)
    namespace: str | None = None
    model: str | None = None
    dry_run: bool = False
    entry_ids: list[str] | None = Field(default=None, max_length=1000)
    limit: int = Field(default=500, ge=1, le=1000)  # most entries a preview lists


class FlushEntries(Contract):
    """Delete every entry of a tenant, or of one namespace in it."""

    type: Literal["flush_entries"] = "flush_entries"
    tenant: str
    namespace: str | None = None


class ReportWrongHit(Contract):
    """A semantic hit's answer was wrong for the question asked: that (entry, question) pair is never
    served again. Named by the hit's request id, or by the entry (id or key) and the question asked (its
    prompt, or the request's messages: the last user message and, in a conversation, the earlier turns)."""

    type: Literal["report_wrong_hit"] = "report_wrong_hit"
    tenant: str
    request_id: str | None = Field(default=None, min_length=1, max_length=128)
    entry: str | None = Field(default=None, min_length=1, max_length=128)
    prompt: str | None = Field(default=None, min_length=1, max_length=100_000)  # a single-turn question
    messages: list[dict[str, Any]] | None = Field(default=None, min_length=1, max_length=1000)  # or the whole chat
    note: str | None = Field(default=None, max_length=2000)


class ListReportedPairs(Contract):
    """A page of the reported pairs of a tenant (None: every tenant), newest first (or oldest first: an
    export paging through them while pairs are reported sees each once). A page's texts are each at most
    4,000 characters: 500 of them fit in one broker message; callers page for more."""

    type: Literal["list_reported_pairs"] = "list_reported_pairs"
    tenant: str | None = None
    limit: int = Field(default=100, ge=1, le=500)
    offset: int = Field(default=0, ge=0)
    oldest_first: bool = False


class ListServedPairs(Contract):
    """The questions an entry answered by semantic hits (within the feedback window), newest first."""

    type: Literal["list_served_pairs"] = "list_served_pairs"
    tenant: str
    entry: str
    limit: int = Field(default=50, ge=1, le=500)


CacheAdminRequest = Annotated[
    ListEntries
    | GetEntry
    | DeleteEntry
    | DeleteNear
    | FlushEntries
    | ReportWrongHit
    | ListReportedPairs
    | ListServedPairs,
    Field(discriminator="type"),
]


CACHE_ADMIN_ADAPTER: TypeAdapter[CacheAdminRequest] = TypeAdapter(CacheAdminRequest)


class EntrySummary(BaseModel):
    """What a listing shows of an entry."""

    id: str
    key: str
    tenant: str
    namespace: str
    model: str
    prompt: str | None
    created_at: float
    expires_at: float
    hit_count: int
    last_hit_at: float | None


class EntryDetail(EntrySummary):
    """One entry in full: its stored completion too."""

    completion: dict[str, Any]


class EntryPage(Contract):
    type: Literal["entry_page"] = "entry_page"
    items: list[EntrySummary]
    total: int
    limit: int
    offset: int


class EntryFound(Contract):
    type: Literal["entry"] = "entry"
    entry: EntryDetail


class EntriesDeleted(Contract):
    type: Literal["deleted"] = "deleted"
    deleted: int
    keys: list[str] = Field(default_factory=list)


class NearEntry(EntrySummary):
    """An entry near a prompt, with its prompt's similarity to it."""

    similarity: float


class NearEntries(Contract):
    """What DeleteNear with dry_run would delete, most similar first."""

    type: Literal["near_entries"] = "near_entries"
    items: list[NearEntry]


class ServedPair(BaseModel):
    """One semantic hit: the entry that answered and the question it answered."""

    request_id: str
    tenant: str
    entry_id: str
    entry_key: str
    asked_prompt: str
    asked_context: str | None = None
    similarity: float | None = None
    served_at: float
    reported: bool = False


class ServedPairList(Contract):
    type: Literal["served_pairs"] = "served_pairs"
    items: list[ServedPair]


class ReportedPair(BaseModel):
    """A (stored entry, asked question) pair reported as a wrong hit: never served again."""

    pair_hash: str
    tenant: str
    entry_key: str
    entry_id: str | None = None
    stored_prompt: str | None
    stored_context: str | None = None
    asked_prompt: str
    asked_context: str | None = None
    similarity: float | None = None
    request_id: str | None = None
    note: str | None = None
    reported_at: float


class WrongHitReported(Contract):
    type: Literal["wrong_hit_reported"] = "wrong_hit_reported"
    pair: ReportedPair
    created: bool  # False: the pair had been reported before


class ReportedPairList(Contract):
    type: Literal["reported_pairs"] = "reported_pairs"
    items: list[ReportedPair]
    total: int
