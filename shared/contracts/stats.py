"""Usage statistics and the usage log (`stats.query`, RPC: gateway -> stats consumer)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, TypeAdapter

from shared.contracts.base import Contract
from shared.contracts.usage_events import UsageResult


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
