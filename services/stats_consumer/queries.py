"""Reads of the usage log: the stats (totals, time series, per model, reasons) and the paged log.

Knows nothing of the broker. Statements are composed from fixed SQL fragments, every value a
parameter; each filter leads with the columns of an index (repository.MIGRATIONS): the tenant
and created_at for a tenant's rows, created_at alone across tenants.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, LiteralString, NamedTuple

from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from services.stats_consumer.cursor import decode_cursor, encode_cursor
from shared.contracts.stats import (
    LatencyPercentiles,
    ModelStats,
    ReasonCounts,
    StatsBucket,
    StatsBucketSize,
    StatsQuery,
    StatsResult,
    UsageMeasures,
    UsagePage,
    UsageQuery,
    UsageRecord,
)

BUCKET_SECONDS: dict[StatsBucketSize, int] = {"hour": 3600, "day": 86400}
# Past this many buckets the series lists only the buckets that have requests, not every empty one.
MAX_FILLED_BUCKETS = 5000
UNKNOWN_REASON = "unknown"

# The measures of any set of rows, in the order measures() reads them.
MEASURES = sql.SQL("""
    count(*),
    count(*) FILTER (WHERE result = 'hit_exact'),
    count(*) FILTER (WHERE result = 'hit_semantic'),
    count(*) FILTER (WHERE result = 'miss'),
    count(*) FILTER (WHERE result = 'bypass'),
    count(*) FILTER (WHERE result = 'error'),
    coalesce(sum(prompt_tokens), 0),
    coalesce(sum(completion_tokens), 0),
    coalesce(sum(tokens_saved), 0),
    coalesce(sum(cost_usd), 0),
    coalesce(sum(cost_saved_usd), 0),
    percentile_cont(ARRAY[0.5, 0.9, 0.99]) WITHIN GROUP (ORDER BY latency_ms),
    percentile_cont(ARRAY[0.5, 0.9, 0.99]) WITHIN GROUP (ORDER BY latency_ms)
        FILTER (WHERE result IN ('hit_exact', 'hit_semantic')),
    percentile_cont(ARRAY[0.5, 0.9, 0.99]) WITHIN GROUP (ORDER BY latency_ms) FILTER (WHERE result = 'miss')
""")

# One scan for the totals, the time series and the per-model breakdown. GROUPING() tells the
# rows apart: 3 = totals (neither column grouped), 1 = one time bucket, 2 = one model.
SELECT_MEASURES = sql.SQL("""
SELECT GROUPING(bucket_start, model), bucket_start, model, {measures}
FROM (
    SELECT {bucket_start} AS bucket_start, model, result, prompt_tokens, completion_tokens,
           tokens_saved, cost_usd, cost_saved_usd, latency_ms
    FROM usage_events
    {where}
) AS window_rows
GROUP BY GROUPING SETS ((), (bucket_start), (model))
""")
TOTALS, SERIES, MODELS = 3, 1, 2
# date_trunc in UTC whatever the session's TimeZone: a day bucket is a UTC day.
BUCKET_START = sql.SQL("date_trunc(%s, created_at, 'UTC')")
NO_BUCKET = sql.SQL("NULL::timestamptz")

SELECT_REASONS = sql.SQL("""
SELECT result, coalesce(reason, {unknown}), count(*)
FROM usage_events
{where}
GROUP BY 1, 2
""")

# The reasons of refused semantic candidates (one request may have several).
SELECT_REFUSALS = sql.SQL("""
SELECT refusal, count(*)
FROM usage_events CROSS JOIN LATERAL unnest(refusals) AS refusal
{where}
GROUP BY 1
""")

SELECT_USAGE = sql.SQL("""
SELECT event_id, request_id, tenant, key_id, namespace, model, result, reason,
       coalesce(prompt_tokens, 0), coalesce(completion_tokens, 0), coalesce(cost_usd, 0),
       coalesce(tokens_saved, 0), coalesce(cost_saved_usd, 0), latency_ms, cache_key, similarity,
       coalesce(refusals, '{{}}'), created_at
FROM usage_events
{where}
ORDER BY created_at DESC, event_id DESC
LIMIT %s
""")


class InvalidQuery(ValueError):
    """A query whose values can't be searched for (a time out of range, ...)."""


@dataclass
class Filters:
    """A WHERE clause under construction: fixed fragments and their parameters, in order."""

    conditions: list[sql.Composable] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)

    def add(self, condition: LiteralString, *params: Any) -> None:
        """Add a fixed condition whose %s placeholders take `params`."""
        self.conditions.append(sql.SQL(condition))
        self.params.extend(params)

    def equal(self, column: str, value: Any) -> None:
        """Add `column = value` unless value is None (no filter)."""
        if value is not None:
            self.conditions.append(sql.SQL("{} = %s").format(sql.Identifier(column)))
            self.params.append(value)

    def clause(self) -> sql.Composable:
        """The WHERE clause (empty when nothing is filtered)."""
        if not self.conditions:
            return sql.SQL("")
        return sql.SQL("WHERE ") + sql.SQL(" AND ").join(self.conditions)


def window_filters(tenant: str | None, since: float | None, until: float | None) -> Filters:
    """Rows of one tenant (None: every tenant) with since <= created_at < until (None: unbounded)."""
    filters = Filters()
    filters.equal("tenant", tenant)
    if since is not None:
        filters.add("created_at >= %s", to_datetime(since, "since"))
    if until is not None:
        filters.add("created_at < %s", to_datetime(until, "until"))
    return filters


def to_datetime(epoch_seconds: float, name: str) -> datetime:
    """An epoch time as an aware UTC datetime; InvalidQuery if it is not a representable time."""
    try:
        return datetime.fromtimestamp(epoch_seconds, tz=UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise InvalidQuery(f"{name} is not a valid time") from exc


# --- stats ---------------------------------------------------------------------------------------


class Statement(NamedTuple):
    """A composed statement and its parameters."""

    query: sql.Composed
    params: list[Any]


def measures_statement(query: StatsQuery) -> Statement:
    """SELECT_MEASURES over the query's window, with a time series only if a bucket size is given."""
    filters = window_filters(query.tenant, query.since, query.until)
    if query.bucket is not None:
        bucket_start, params = BUCKET_START, [query.bucket, *filters.params]
    else:
        # GROUPING() needs bucket_start in a grouping set; NULL makes it one empty-keyed group, ignored.
        bucket_start, params = NO_BUCKET, filters.params
    statement = SELECT_MEASURES.format(measures=MEASURES, bucket_start=bucket_start, where=filters.clause())
    return Statement(statement, params)


def reasons_statement(query: StatsQuery) -> Statement:
    """SELECT_REASONS over the query's window."""
    filters = window_filters(query.tenant, query.since, query.until)
    filters.add("result IN ('bypass', 'error')")
    statement = SELECT_REASONS.format(unknown=sql.Literal(UNKNOWN_REASON), where=filters.clause())
    return Statement(statement, filters.params)


def refusals_statement(query: StatsQuery) -> Statement:
    """SELECT_REFUSALS over the query's window."""
    filters = window_filters(query.tenant, query.since, query.until)
    filters.add("refusals IS NOT NULL")
    return Statement(SELECT_REFUSALS.format(where=filters.clause()), filters.params)


async def query_stats(pool: AsyncConnectionPool, query: StatsQuery) -> StatsResult:
    """Totals, time series (if a bucket size is asked for), per-model measures and reasons over a window."""
    measures_query, reasons_query = measures_statement(query), reasons_statement(query)
    refusals_query = refusals_statement(query)
    async with pool.connection() as conn, conn.transaction():
        # One snapshot for every statement, so the reasons add up to the totals' bypasses and errors.
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        measure_rows = await (await conn.execute(measures_query.query, measures_query.params)).fetchall()
        reason_rows = await (await conn.execute(reasons_query.query, reasons_query.params)).fetchall()
        refusal_rows = await (await conn.execute(refusals_query.query, refusals_query.params)).fetchall()
    return stats_result(query, measure_rows, reason_rows, refusal_rows)


def stats_result(
    query: StatsQuery,
    measure_rows: Sequence[Sequence[Any]],
    reason_rows: Sequence[Sequence[Any]],
    refusal_rows: Sequence[Sequence[Any]] = (),
) -> StatsResult:
    """Assemble the StatsResult from the rows of SELECT_MEASURES and SELECT_REASONS."""
    totals: dict[str, Any] = measures(None)
    buckets: dict[int, StatsBucket] = {}
    models: list[ModelStats] = []
    for level, bucket_start, model, *values in measure_rows:
        if level == TOTALS:
            totals = measures(values)
        elif level == SERIES and bucket_start is not None:
            start = int(bucket_start.timestamp())
            buckets[start] = StatsBucket(start=start, **measures(values))
        elif level == MODELS:
            models.append(ModelStats(model=model, **measures(values)))
    models.sort(key=lambda m: (-m.requests, m.model))
    reasons = ReasonCounts()
    for result, reason, count in reason_rows:
        (reasons.bypass if result == "bypass" else reasons.error)[reason] = count
    for refusal, count in refusal_rows:
        reasons.refused[refusal] = count
    series = fill_series(buckets, query.since, query.until, query.bucket) if query.bucket is not None else []
    return StatsResult(
        tenant=query.tenant,
        since=query.since,
        until=query.until,
        bucket=query.bucket,
        series=series,
        models=models,
        reasons=reasons,
        **totals,
    )


def measures(values: Sequence[Any] | None) -> dict[str, Any]:
    """The UsageMeasures fields from the columns of MEASURES (None: an empty set of rows)."""
    if values is None:
        return dict(UsageMeasures())
    requests, hits_exact, hits_semantic, misses, bypasses, errors = values[:6]
    prompt_tokens, completion_tokens, tokens_saved, cost_usd, cost_saved_usd, percentiles = values[6:12]
    hit_percentiles, miss_percentiles = values[12:14] if len(values) >= 14 else (None, None)
    hits = hits_exact + hits_semantic
    return {
        "requests": requests,
        "hits": hits,
        "hits_exact": hits_exact,
        "hits_semantic": hits_semantic,
        "misses": misses,
        "bypasses": bypasses,
        "errors": errors,
        "hit_rate": hits / requests if requests else 0.0,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "tokens_saved": tokens_saved,
        "cost_usd": float(cost_usd),
        "cost_saved_usd": float(cost_saved_usd),
        "latency_ms": latency(percentiles),
        "hit_latency_ms": latency(hit_percentiles),
        "miss_latency_ms": latency(miss_percentiles),
    }


def latency(percentiles: Sequence[float | None] | None) -> LatencyPercentiles:
    """LatencyPercentiles from percentile_cont's array of p50, p90, p99 (None: no rows)."""
    p50, p90, p99 = percentiles if percentiles is not None else (None, None, None)
    return LatencyPercentiles(p50=p50, p90=p90, p99=p99)


def fill_series(
    found: dict[int, StatsBucket], since: float | None, until: float | None, bucket: StatsBucketSize
) -> list[StatsBucket]:
    """Every bucket of [since, until), oldest first, empty ones zeroed, so a chart needs no gap logic.

    Without both ends of the window (or with too many buckets) only the buckets found are listed.
    """
    step = BUCKET_SECONDS[bucket]
    if since is None or until is None:
        return [found[start] for start in sorted(found)]
    first = math.floor(since / step) * step
    count = math.ceil((until - first) / step)
    if count > MAX_FILLED_BUCKETS:
        return [found[start] for start in sorted(found)]
    starts = (first + i * step for i in range(max(count, 0)))
    return [found.get(start) or StatsBucket(start=start) for start in starts]


# --- the usage log -------------------------------------------------------------------------------


async def query_usage(pool: AsyncConnectionPool, query: UsageQuery) -> UsagePage:
    """A page of the usage log, newest first, continuing after `query.cursor` when given.

    Keyset pagination on (created_at, event_id): rows logged while a client pages never shift
    the pages it has yet to read, and each page is one index range scan however deep it is.
    """
    statement = usage_statement(query)
    async with pool.connection() as conn:
        rows = await (await conn.execute(statement.query, statement.params)).fetchall()
    page, more = rows[: query.limit], len(rows) > query.limit
    next_cursor = encode_cursor(page[-1][-1], page[-1][0]) if more else None
    return UsagePage(items=[usage_record(row) for row in page], next_cursor=next_cursor)


def usage_statement(query: UsageQuery) -> Statement:
    """SELECT_USAGE with the query's filters; it fetches one row more than a page to tell if there is a next."""
    filters = window_filters(query.tenant, query.since, query.until)
    filters.equal("model", query.model)
    filters.equal("result", query.result)
    filters.equal("key_id", query.key_id)
    filters.equal("namespace", query.namespace)
    filters.equal("cache_key", query.cache_key)
    filters.equal("request_id", query.request_id)
    if query.cursor is not None:
        filters.add("(created_at, event_id) < (%s, %s)", *decode_cursor(query.cursor))
    return Statement(SELECT_USAGE.format(where=filters.clause()), [*filters.params, query.limit + 1])


def usage_record(row: Sequence[Any]) -> UsageRecord:
    """A UsageRecord from a row of SELECT_USAGE."""
    (event_id, request_id, tenant, key_id, namespace, model, result, reason, prompt_tokens, completion_tokens,
     cost_usd, tokens_saved, cost_saved_usd, latency_ms, cache_key, similarity, refusals, created_at) = row  # fmt: skip
    return UsageRecord(
        event_id=event_id,
        request_id=request_id,
        tenant=tenant,
        key_id=key_id,
        namespace=namespace,
        model=model,
        result=result,
        reason=reason,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cost_usd=float(cost_usd),
        tokens_saved=tokens_saved,
        cost_saved_usd=float(cost_saved_usd),
        latency_ms=latency_ms,
        created_at=created_at.timestamp(),
        cache_key=cache_key,
        similarity=similarity,
        refusals=list(refusals),
    )
