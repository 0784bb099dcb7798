"""Every message that crosses the broker, as pydantic v2 models, named by direction.

Messages are JSON (never pickle) and carry a schema version: a consumer validates each one and
dead-letters what it cannot read. Routing and cache metadata travel in a typed envelope beside
the OpenAI payload (`body`), never inside it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

SCHEMA_VERSION = 1


class Contract(BaseModel):
    """Base of every message: versioned, strict about unknown versions, lenient about extra fields."""

    model_config = ConfigDict(extra="ignore")
    v: Literal[1] = 1  # SCHEMA_VERSION


# --- request path: gateway -> cache worker -> LLM worker -----------------------------------------

CacheMode = Literal["exact", "semantic", "off"]


class CacheControls(Contract):
    """What the caller asked of the cache for this one request (headers, settings defaults)."""

    mode: CacheMode = "semantic"  # "semantic" = exact lookup first, then semantic
    read: bool = True  # False for Cache-Control: no-cache
    store: bool = True  # False for Cache-Control: no-store
    ttl_seconds: int | None = None  # None: the cache worker's default
    max_age_seconds: int | None = None  # only accept entries younger than this
    namespace: str = "default"
    similarity_threshold: float | None = None  # None: the cache worker's default


class LookupContext(Contract):
    """What the cache worker learnt on a miss, carried to the LLM worker and back into the store event."""

    status: Literal["MISS", "BYPASS"] = "MISS"
    bypass_reason: str | None = None
    store: bool = True  # False: the answer must not be stored (no-store, mode off, ...)
    flight_leader: bool = False  # this request holds the single-flight lock of its exact key
    exact_key: str | None = None
    partition_key: str | None = None
    prompt_text: str | None = None
    embedding: list[float] | None = None
    embedding_model: str | None = None
    best_similarity: float | None = None


class CompletionRequest(Contract):
    """A chat completion request, published by the gateway to the cache worker (and on to the LLM worker)."""

    type: Literal["completion_request"] = "completion_request"
    request_id: str
    tenant: str
    key_id: str | None = None  # the API key that sent it (None until keys are required)
    received_at: float  # epoch seconds, set by the gateway
    deadline: float  # epoch seconds after which nobody waits for the answer
    stream: bool = False
    body: dict[str, Any]  # the OpenAI payload as the client sent it
    controls: CacheControls = Field(default_factory=CacheControls)
    lookup: LookupContext | None = None


# --- replies to the gateway's reply queue -------------------------------------------------------


class CacheInfo(BaseModel):
    """How a reply was produced: becomes the X-Cache* response headers."""

    status: Literal["HIT", "MISS", "BYPASS"]
    match: Literal["exact", "semantic"] | None = None
    similarity: float | None = None
    key: str | None = None
    age_seconds: int | None = None
    bypass_reason: str | None = None
    upstream: str | None = None  # "mock" when no real upstream is configured
    coalesced: bool = False  # answered from a concurrent identical request's upstream call


class ErrorInfo(BaseModel):
    """An error as data: turned into an OpenAI-style error body with `status` at the gateway."""

    type: str = "api_error"
    message: str
    status: int = 500
    code: str | None = None


class CompletionReply(Contract):
    """A whole chat completion (a hit, or a non-streamed miss)."""

    kind: Literal["completion"] = "completion"
    cache: CacheInfo
    completion: dict[str, Any]


class ChunkReply(Contract):
    """One chunk of a streamed miss, in OpenAI's chat.completion.chunk format; the first carries `cache`."""

    kind: Literal["chunk"] = "chunk"
    seq: int
    cache: CacheInfo | None = None
    chunk: dict[str, Any]


class EndReply(Contract):
    """The end of a streamed reply."""

    kind: Literal["end"] = "end"
    seq: int


class ErrorReply(Contract):
    """A failure, as data."""

    kind: Literal["error"] = "error"
    error: ErrorInfo


Reply = Annotated[CompletionReply | ChunkReply | EndReply | ErrorReply, Field(discriminator="kind")]


REPLY_ADAPTER: TypeAdapter[Reply] = TypeAdapter(Reply)


# --- embedder RPC -------------------------------------------------------------------------------


class EmbedRequest(Contract):
    """Texts to embed, sent by the cache worker (or the eval harness) to the embedder."""

    type: Literal["embed_request"] = "embed_request"
    texts: list[str] = Field(min_length=1)


class EmbedResult(Contract):
    """Unit-length embeddings, one per text, in order."""

    kind: Literal["embeddings"] = "embeddings"
    model: str
    dim: int
    vectors: list[list[float]]


# --- events (durable, persistent) ---------------------------------------------------------------


class CompletionGenerated(Contract):
    """A complete, storable answer from the upstream: the cache worker stores it (Redis + pgvector)."""

    type: Literal["completion_generated"] = "completion_generated"
    event_id: str
    tenant: str
    namespace: str
    model: str
    exact_key: str
    partition_key: str | None = None
    prompt_text: str | None = None
    embedding: list[float] | None = None
    embedding_model: str | None = None
    completion: dict[str, Any]
    upstream: str | None = None
    ttl_seconds: int | None = None
    created_at: float


class FlightEnded(Contract):
    """The single-flight leader of an exact key finished without storing an answer: waiters go upstream."""

    type: Literal["flight_ended"] = "flight_ended"
    tenant: str
    exact_key: str
    reason: str


StoreEvent = Annotated[CompletionGenerated | FlightEnded, Field(discriminator="type")]
STORE_EVENT_ADAPTER: TypeAdapter[StoreEvent] = TypeAdapter(StoreEvent)

UsageResult = Literal["hit_exact", "hit_semantic", "miss", "bypass", "error"]


class UsageEvent(Contract):
    """One answered request, for the usage log and the stats."""

    type: Literal["usage"] = "usage"
    event_id: str
    request_id: str
    tenant: str
    key_id: str | None = None
    namespace: str = "default"
    model: str
    result: UsageResult
    reason: str | None = None  # bypass or error reason
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0  # what this request cost upstream (misses)
    tokens_saved: int = 0  # hits: tokens the upstream would have processed
    cost_saved_usd: float = 0.0  # hits: what the upstream would have charged
    latency_ms: float = 0.0
    created_at: float


# --- queries and control (RPC) ------------------------------------------------------------------


class StatsQuery(Contract):
    """Ask the stats consumer for the aggregates of one tenant (None: all)."""

    type: Literal["stats_query"] = "stats_query"
    tenant: str | None = None


class StatsResult(Contract):
    """Totals over the usage log."""

    kind: Literal["stats"] = "stats"
    tenant: str | None
    requests: int
    hits: int
    hits_exact: int
    hits_semantic: int
    misses: int
    bypasses: int
    errors: int
    hit_rate: float
    prompt_tokens: int
    completion_tokens: int
    tokens_saved: int
    cost_usd: float
    cost_saved_usd: float


class HealthQuery(Contract):
    """Ask a service whether it and its dependencies are up."""

    type: Literal["health_query"] = "health_query"


class HealthReport(Contract):
    """One service's answer to a HealthQuery."""

    kind: Literal["health"] = "health"
    service: str
    ok: bool
    checks: dict[str, bool] = Field(default_factory=dict)


class ModelsQuery(Contract):
    """Ask the LLM worker which models the upstream serves."""

    type: Literal["models_query"] = "models_query"


class ModelsResult(Contract):
    """The upstream's model list, in OpenAI's format (`data` items)."""

    kind: Literal["models"] = "models"
    data: list[dict[str, Any]]


ControlRequest = Annotated[HealthQuery | ModelsQuery, Field(discriminator="type")]


CONTROL_ADAPTER: TypeAdapter[ControlRequest] = TypeAdapter(ControlRequest)


# --- cache browsing and invalidation (admin RPC, gateway -> cache worker) ------------------------


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
    """Delete every entry whose prompt is semantically near `prompt` (similarity >= min_similarity)."""

    type: Literal["delete_near"] = "delete_near"
    tenant: str
    prompt: str = Field(min_length=1)
    min_similarity: float = Field(ge=0, le=1)
    namespace: str | None = None
    model: str | None = None


class FlushEntries(Contract):
    """Delete every entry of a tenant, or of one namespace in it."""

    type: Literal["flush_entries"] = "flush_entries"
    tenant: str
    namespace: str | None = None


CacheAdminRequest = Annotated[
    ListEntries | GetEntry | DeleteEntry | DeleteNear | FlushEntries, Field(discriminator="type")
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
    kind: Literal["entry_page"] = "entry_page"
    items: list[EntrySummary]
    total: int
    limit: int
    offset: int


class EntryFound(Contract):
    kind: Literal["entry"] = "entry"
    entry: EntryDetail


class EntriesDeleted(Contract):
    kind: Literal["deleted"] = "deleted"
    deleted: int
    keys: list[str] = Field(default_factory=list)
