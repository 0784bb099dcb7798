"""Every message that crosses the broker, as pydantic v2 models, named by direction.

Messages are JSON (never pickle) and carry a schema version: a consumer validates each one and
dead-letters what it cannot read. Routing and cache metadata travel in a typed envelope beside
the OpenAI payload (`body`), never inside it.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, TypeAdapter, model_validator

SCHEMA_VERSION = 1


class Contract(BaseModel):
    """Base of every message: versioned, strict about unknown versions, lenient about extra fields."""

    model_config = ConfigDict(extra="ignore")
    v: Literal[1] = 1  # SCHEMA_VERSION


# --- request path: gateway -> cache worker -> LLM worker -----------------------------------------

CacheMode = Literal["exact", "semantic", "off"]
# The API format of a request's `body` and of its answer: OpenAI's chat completions or Anthropic's Messages.
# Part of the cache partition: an answer stored in one format never answers a request in the other.
ApiProtocol = Literal["openai", "anthropic"]


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
    flight_leader: bool = False  # this request holds the single-flight lease of its exact key
    flight_lease_seconds: float | None = None  # the leader renews its lease this often (FlightRenewal), x3
    exact_key: str | None = None
    partition_key: str | None = None
    prompt_text: str | None = None
    context_text: str | None = None  # a conversation's earlier turns, whole, as "role: text" lines
    user_turns: list[str] | None = None  # the user's earlier messages of a conversation, in order
    embedding: list[float] | None = None
    embedding_model: str | None = None
    best_similarity: float | None = None
    refusals: list[str] = Field(default_factory=list)  # why the semantic candidates were not served


# A request in another format than OpenAI's (a Messages request) is version 2: workers from before
# `protocol` existed would drop the field and read the body as OpenAI's (an OpenAI cache key, an
# OpenAI call); their `v: Literal[1]` refuses it instead (dead-lettered, the gateway answered at once).
PROTOCOL_SCHEMA_VERSION = 2


class CompletionRequest(Contract):
    """A chat completion (or Messages) request, published by the gateway to the cache worker (and on to the
    LLM worker). Deploy workers before gateways: only new gateways publish version 2."""

    v: Literal[1, 2] = 1  # type: ignore[assignment]  # 2 when `protocol` is not "openai"
    type: Literal["completion_request"] = "completion_request"
    request_id: str
    tenant: str
    key_id: str | None = None  # the API key that sent it (None until keys are required)
    received_at: float  # epoch seconds, set by the gateway
    deadline: float  # epoch seconds after which nobody waits for the answer
    stream: bool = False
    body: dict[str, Any]  # the payload as the client sent it, in `protocol`'s format
    controls: CacheControls = Field(default_factory=CacheControls)
    lookup: LookupContext | None = None
    protocol: ApiProtocol = "openai"

    @model_validator(mode="before")
    @classmethod
    def _version_of_the_protocol(cls, data: Any) -> Any:
        """Built here: the version follows the protocol. Read off the wire: a version 2 request must still
        carry its protocol (an older cache worker forwarding it would have dropped it)."""
        if not isinstance(data, dict):
            return data
        protocol = data.get("protocol", "openai")
        if "v" not in data:
            return {**data, "v": PROTOCOL_SCHEMA_VERSION if protocol != "openai" else SCHEMA_VERSION}
        if data["v"] == PROTOCOL_SCHEMA_VERSION and "protocol" not in data:
            raise ValueError(
                "a version 2 (Messages) request without its protocol: an older worker forwarded it"
                " (deploy workers before gateways)"
            )
        if data["v"] == SCHEMA_VERSION and protocol != "openai":
            raise ValueError(f"a {protocol!r} request must be version 2")
        return data


class CachedEmbedding(BaseModel):
    """One input's vector found in the cache, with the tokens the upstream charged for it."""

    index: int  # position in the request's input list
    embedding: list[float] | str  # as the upstream sent it: floats, or base64 for encoding_format=base64
    tokens: int = 0


class EmbeddingsLookup(Contract):
    """What the cache worker found for an embeddings request, as the LLM worker needs it: never the cached
    vectors (they go from the cache worker to the gateway, so no vector crosses the broker twice)."""

    status: Literal["MISS", "BYPASS"] = "MISS"
    bypass_reason: str | None = None
    store: bool = True  # False: vectors from the upstream must not be stored
    keys: list[str] = Field(default_factory=list)  # the exact key of each input of the forwarded `body`, in order
    # Where each input of the forwarded `body` is in the client's request, when some were cached (None: the same).
    indexes: list[int] | None = None
    inputs_cached: int = 0  # how many of the client's inputs the cache answered
    tokens_saved: int = 0  # the upstream's tokens for those


class EmbeddingsRequest(Contract):
    """POST /v1/embeddings, published by the gateway to the cache worker, and on to the LLM worker with only the
    inputs the cache does not hold (`lookup.indexes` says where they go)."""

    type: Literal["embeddings_request"] = "embeddings_request"
    request_id: str
    tenant: str
    key_id: str | None = None
    received_at: float
    deadline: float
    body: dict[str, Any]  # the OpenAI embeddings payload as the client sent it (or the inputs left to embed)
    controls: CacheControls = Field(default_factory=CacheControls)
    lookup: EmbeddingsLookup | None = None


# What the cache.lookup and llm.request queues carry.
WorkRequest = Annotated[CompletionRequest | EmbeddingsRequest, Field(discriminator="type")]
WORK_REQUEST_ADAPTER: TypeAdapter[WorkRequest] = TypeAdapter(WorkRequest)


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
    # Embeddings: how many of the request's inputs the cache answered, of how many.
    inputs_cached: int | None = None
    inputs: int | None = None


class ErrorInfo(BaseModel):
    """An error as data: turned into an OpenAI-style error body with `status` at the gateway."""

    type: str = "api_error"
    message: str
    status: int = 500
    code: str | None = None
    param: str | None = None
    # From the upstream's Retry-After (a 429 or 503): the client's SDK waits this long before its retry.
    retry_after_seconds: float | None = None


class CompletionReply(Contract):
    """A whole chat completion (a hit, or a non-streamed miss)."""

    type: Literal["completion"] = "completion"
    cache: CacheInfo
    completion: dict[str, Any]


class ChunkReply(Contract):
    """One chunk of a streamed miss, in OpenAI's chat.completion.chunk format; the first carries `cache`."""

    type: Literal["chunk"] = "chunk"
    seq: int
    cache: CacheInfo | None = None
    chunk: dict[str, Any]


class EndReply(Contract):
    """The end of a streamed reply."""

    type: Literal["end"] = "end"
    seq: int
    usage: dict[str, Any] | None = None  # the upstream's token usage, for per-key token limits


class ErrorReply(Contract):
    """A failure, as data."""

    type: Literal["error"] = "error"
    error: ErrorInfo
    cache: CacheInfo | None = None  # an upstream's error: the request's X-Cache* headers (a miss or a bypass)


class EmbeddingsCached(Contract):
    """The cached vectors of a partly cached embeddings request, from the cache worker; the LLM worker's
    reply has the others, and the gateway answers with both."""

    type: Literal["embeddings_cached"] = "embeddings_cached"
    cached: list[CachedEmbedding] = Field(min_length=1)


Reply = Annotated[CompletionReply | ChunkReply | EndReply | ErrorReply | EmbeddingsCached, Field(discriminator="type")]


REPLY_ADAPTER: TypeAdapter[Reply] = TypeAdapter(Reply)


# --- embedder RPC -------------------------------------------------------------------------------


class EmbedRequest(Contract):
    """Texts to embed, sent by the cache worker (or the eval harness) to the embedder."""

    type: Literal["embed_request"] = "embed_request"
    texts: list[str] = Field(min_length=1)


class EmbedResult(Contract):
    """Unit-length embeddings, one per text, in order."""

    type: Literal["embeddings"] = "embeddings"
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
    context_text: str | None = None
    user_turns: list[str] | None = None
    embedding: list[float] | None = None
    embedding_model: str | None = None
    completion: dict[str, Any]
    upstream: str | None = None
    ttl_seconds: int | None = None
    created_at: float
    flight_id: str | None = None  # the request id of the single flight's leader that produced it, if it led one


class FlightEnded(Contract):
    """The single-flight leader of an exact key finished without storing an answer: waiters go upstream."""

    type: Literal["flight_ended"] = "flight_ended"
    tenant: str
    exact_key: str
    reason: str
    flight_id: str | None = None  # the leader's request id: a flight since taken over is left alone


class FlightRenewal(Contract):
    """The leader of a single flight is still at work (sent by the LLM worker every third of its lease):
    the cache worker extends its lease. Transient: a leader that stops renewing has died, and its
    followers take over once the lease lapses."""

    type: Literal["flight_renewal"] = "flight_renewal"
    exact_key: str
    flight_id: str  # the leader's request id
    lease_seconds: float = Field(gt=0, le=300)


class RequestCancelled(Contract):
    """The client of a request went away (a stream closed early): stop its upstream call, store nothing."""

    type: Literal["request_cancelled"] = "request_cancelled"
    request_id: str


class GeneratedEmbedding(BaseModel):
    """One input's vector from the upstream, to store under its exact key."""

    key: str
    embedding: list[float] | str
    tokens: int = 0


class EmbeddingsGenerated(Contract):
    """Vectors the upstream computed for an embeddings request: the cache worker stores each under its key."""

    type: Literal["embeddings_generated"] = "embeddings_generated"
    event_id: str
    tenant: str
    namespace: str
    model: str
    items: list[GeneratedEmbedding] = Field(min_length=1)
    ttl_seconds: int | None = None
    created_at: float


StoreEvent = Annotated[CompletionGenerated | FlightEnded | EmbeddingsGenerated, Field(discriminator="type")]
STORE_EVENT_ADAPTER: TypeAdapter[StoreEvent] = TypeAdapter(StoreEvent)

UsageResult = Literal["hit_exact", "hit_semantic", "miss", "bypass", "error"]


MAX_USAGE_BATCH = 1000  # events per UsageEventBatch message


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
    # The entry behind the answer: a hit's entry, or the key a miss's answer is stored under.
    cache_key: str | None = None
    # Semantic hits: the served entry's similarity; misses: the nearest candidate's (refused).
    similarity: float | None = None
    refusals: list[str] = Field(default_factory=list)  # refused semantic candidates, by reason
    # The request's W3C trace context (traceparent, tracestate), when it is traced: a batch carries the
    # events of many requests, and each one's `usage.write` span belongs to its own request's trace.
    trace_context: dict[str, str] | None = None


class UsageEventBatch(Contract):
    """The usage events of several requests in one message: the cache worker sends its hits' events so.

    One persistent, confirmed message for many hits instead of one each: the broker's and the stats
    consumer's cost per hit falls with the batch size.
    """

    type: Literal["usage_batch"] = "usage_batch"
    events: list[UsageEvent] = Field(min_length=1, max_length=MAX_USAGE_BATCH)


def _usage_message_type(value: Any) -> str:
    # A single event may come without its `type` (it has a default): it is a plain UsageEvent then.
    if isinstance(value, dict):
        return str(value.get("type", "usage"))
    return str(getattr(value, "type", "usage"))


UsageMessage = Annotated[
    Annotated[UsageEvent, Tag("usage")] | Annotated[UsageEventBatch, Tag("usage_batch")],
    Discriminator(_usage_message_type),
]
USAGE_MESSAGE_ADAPTER: TypeAdapter[UsageMessage] = TypeAdapter(UsageMessage)


# --- queries and control (RPC) ------------------------------------------------------------------


class StatsQuery(Contract):
    """Ask the stats consumer for the aggregates of one tenant (None: all)."""

    type: Literal["stats_query"] = "stats_query"
    tenant: str | None = None
    since: float | None = None  # epoch seconds, inclusive; None: from the first event
    until: float | None = None  # epoch seconds, exclusive; None: up to the last event
    bucket: StatsBucketSize | None = None  # None: totals and breakdowns only, no time series


class StatsResult(Contract):
    """Totals over the usage log."""

    type: Literal["stats"] = "stats"
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
    latency_ms: LatencyPercentiles = Field(default_factory=lambda: LatencyPercentiles())
    hit_latency_ms: LatencyPercentiles = Field(default_factory=lambda: LatencyPercentiles())  # hits only
    miss_latency_ms: LatencyPercentiles = Field(default_factory=lambda: LatencyPercentiles())  # misses only
    since: float | None = None  # the window asked for (epoch seconds)
    until: float | None = None
    bucket: StatsBucketSize | None = None
    series: list[StatsBucket] = Field(default_factory=list)  # oldest first, empty buckets included
    models: list[ModelStats] = Field(default_factory=list)  # busiest first
    reasons: ReasonCounts = Field(default_factory=lambda: ReasonCounts())


class HealthQuery(Contract):
    """Ask a service whether it and its dependencies are up."""

    type: Literal["health_query"] = "health_query"


class HealthReport(Contract):
    """One service's answer to a HealthQuery."""

    type: Literal["health"] = "health"
    service: str
    ok: bool
    checks: dict[str, bool] = Field(default_factory=dict)


class ModelsQuery(Contract):
    """Ask the LLM worker which models the upstream serves."""

    type: Literal["models_query"] = "models_query"


class ModelsResult(Contract):
    """The upstream's model list, in OpenAI's format (`data` items)."""

    type: Literal["models"] = "models"
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


# --- usage statistics and the usage log (RPC, gateway -> stats consumer) ------------------------
# StatsQuery and StatsResult (above) refer to these: they are rebuilt once these are defined.

StatsBucketSize = Literal["hour", "day"]


class LatencyPercentiles(BaseModel):
    """Percentiles of latency_ms over a set of requests (None when the set is empty)."""

    p50: float | None = None
    p90: float | None = None
    p99: float | None = None


class UsageMeasures(BaseModel):
    """What the stats report for any set of requests: the totals, a time bucket or a model."""

    requests: int = 0
    hits: int = 0
    hits_exact: int = 0
    hits_semantic: int = 0
    misses: int = 0
    bypasses: int = 0
    errors: int = 0
    hit_rate: float = 0.0  # hits / requests
    prompt_tokens: int = 0
    completion_tokens: int = 0
    tokens_saved: int = 0
    cost_usd: float = 0.0
    cost_saved_usd: float = 0.0
    latency_ms: LatencyPercentiles = Field(default_factory=LatencyPercentiles)
    hit_latency_ms: LatencyPercentiles = Field(default_factory=LatencyPercentiles)  # hits only
    miss_latency_ms: LatencyPercentiles = Field(default_factory=LatencyPercentiles)  # misses only


class StatsBucket(UsageMeasures):
    """One bucket of the time series; `start` is the bucket's first second (epoch seconds, UTC)."""

    start: float


class ModelStats(UsageMeasures):
    """The measures of one model's requests."""

    model: str


class ReasonCounts(BaseModel):
    """How many bypasses and errors there were, by reason ("unknown" when none was given), and how
    many semantic candidates were refused, by the refusal's reason."""

    bypass: dict[str, int] = Field(default_factory=dict)
    error: dict[str, int] = Field(default_factory=dict)
    refused: dict[str, int] = Field(default_factory=dict)


class UsageQuery(Contract):
    """Ask the stats consumer for a page of the usage log, newest first, optionally filtered."""

    type: Literal["usage_query"] = "usage_query"
    tenant: str | None = None  # None: every tenant (admin callers only)
    model: str | None = None
    result: UsageResult | None = None
    key_id: str | None = None
    since: float | None = None  # epoch seconds, inclusive
    until: float | None = None  # epoch seconds, exclusive
    limit: int = Field(default=50, ge=1, le=500)
    cursor: str | None = None  # a previous page's next_cursor: continue after its last row
    namespace: str | None = None
    cache_key: str | None = None  # only the requests of this entry
    request_id: str | None = None


class UsageRecord(BaseModel):
    """One row of the usage log (namespace and key_id are None for rows logged before they existed)."""

    event_id: str
    request_id: str | None
    tenant: str
    key_id: str | None
    namespace: str | None
    model: str
    result: UsageResult
    reason: str | None
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    tokens_saved: int
    cost_saved_usd: float
    latency_ms: float | None
    created_at: float  # epoch seconds
    cache_key: str | None = None
    similarity: float | None = None
    refusals: list[str] = Field(default_factory=list)


class UsagePage(Contract):
    """A page of the usage log; pass `next_cursor` back for the next one (None: this is the last)."""

    type: Literal["usage_page"] = "usage_page"
    items: list[UsageRecord]
    next_cursor: str | None = None


StatsQuery.model_rebuild()
StatsResult.model_rebuild()

StatsRequest = Annotated[StatsQuery | UsageQuery, Field(discriminator="type")]
STATS_REQUEST_ADAPTER: TypeAdapter[StatsRequest] = TypeAdapter(StatsRequest)


# --- tenants and API keys (RPC to the tenants service; KeyRevoked on a fanout exchange) ----------
# Keys are stored and looked up by hash only: the plain key crosses the broker once, in the
# KeyCreated reply to the admin who made it.

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
