"""The pure parts of the usage-log reads: statement composition, series filling, result assembly."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from psycopg import sql

from services.stats_consumer.cursor import encode_cursor
from services.stats_consumer.queries import (
    MAX_FILLED_BUCKETS,
    InvalidQuery,
    fill_series,
    measures,
    measures_statement,
    reasons_statement,
    stats_result,
    usage_statement,
)
from shared.contracts.stats import StatsBucket, StatsQuery, UsageQuery

HOUR, DAY = 3600, 86400
BASE = 1_699_999_200  # an hour boundary


def text(composed: sql.Composable) -> str:
    return composed.as_string(None)


def measure_values(requests: int, hits_exact: int = 0, latencies: list[float] | None = None) -> list[object]:
    misses = requests - hits_exact
    return [requests, hits_exact, 0, misses, 0, 0, 10, 20, 5, 0.5, 0.25, latencies]


def test_window_and_tenant_become_parameters() -> None:
    statement = usage_statement(UsageQuery(tenant="acme", since=BASE, until=BASE + HOUR, model="m", limit=10))
    query = text(statement.query)
    assert 'WHERE "tenant" = %s AND created_at >= %s AND created_at < %s AND "model" = %s' in query
    assert "acme" not in query
    assert statement.params == [
        "acme",
        datetime.fromtimestamp(BASE, UTC),
        datetime.fromtimestamp(BASE + HOUR, UTC),
        "m",
        11,  # one more than the page, to tell whether there is a next one
    ]


def test_every_tenant_and_no_filter_means_no_where_clause() -> None:
    statement = usage_statement(UsageQuery())
    assert "WHERE" not in text(statement.query)
    assert statement.params == [51]


def test_a_cursor_continues_strictly_after_its_row() -> None:
    at = datetime(2024, 1, 1, tzinfo=UTC)
    statement = usage_statement(UsageQuery(tenant="acme", cursor=encode_cursor(at, "e-9")))
    assert "(created_at, event_id) < (%s, %s)" in text(statement.query)
    assert statement.params == ["acme", at, "e-9", 51]


def test_stats_statements_share_the_window() -> None:
    query = StatsQuery(tenant="acme", since=BASE, until=BASE + DAY, bucket="day")
    measures_query, reasons_query = measures_statement(query), reasons_statement(query)
    assert measures_query.params[0] == "day"  # date_trunc's unit
    assert measures_query.params[1:] == reasons_query.params
    assert "result IN ('bypass', 'error')" in text(reasons_query.query)
    assert measures_statement(StatsQuery()).params == []


def test_times_out_of_range_are_invalid_queries() -> None:
    with pytest.raises(InvalidQuery):
        usage_statement(UsageQuery(since=1e20))
    with pytest.raises(InvalidQuery):
        measures_statement(StatsQuery(until=float("nan")))


def test_fill_series_zeroes_missing_buckets_from_the_window_start() -> None:
    found = {BASE + HOUR: StatsBucket(start=BASE + HOUR, requests=4)}
    series = fill_series(found, BASE + 120, BASE + 3 * HOUR, "hour")
    assert [(b.start, b.requests) for b in series] == [(BASE, 0), (BASE + HOUR, 4), (BASE + 2 * HOUR, 0)]
    # until exclusive: a window ending on a boundary has no bucket starting there.
    assert len(fill_series({}, BASE, BASE + HOUR, "hour")) == 1
    assert len(fill_series({}, BASE, BASE + HOUR + 1, "hour")) == 2
    assert fill_series({}, BASE, BASE, "hour") == []


def test_fill_series_lists_only_found_buckets_without_a_bounded_window() -> None:
    found = {start: StatsBucket(start=start, requests=1) for start in (BASE + DAY, BASE)}
    assert [b.start for b in fill_series(found, None, None, "day")] == [BASE, BASE + DAY]
    assert [b.start for b in fill_series(found, 0, BASE + 2 * DAY, "hour")] == [BASE, BASE + DAY]
    assert (BASE + 2 * DAY) / HOUR > MAX_FILLED_BUCKETS


def test_measures_of_no_rows_and_of_some() -> None:
    empty = measures(None)
    assert empty["latency_ms"].p50 is None
    some = measures(measure_values(4, hits_exact=1, latencies=[1.0, 2.0, 3.0]))
    assert (some["requests"], some["hits"], some["misses"], some["hit_rate"]) == (4, 1, 3, 0.25)
    assert (some["latency_ms"].p50, some["latency_ms"].p90, some["latency_ms"].p99) == (1.0, 2.0, 3.0)
    assert measures(measure_values(0))["hit_rate"] == 0.0


def test_stats_result_sorts_rows_into_totals_series_models_and_reasons() -> None:
    query = StatsQuery(tenant="acme", since=BASE, until=BASE + 2 * HOUR, bucket="hour")
    hour = datetime.fromtimestamp(BASE + HOUR, UTC)
    rows = [
        (3, None, None, *measure_values(5, hits_exact=2)),
        (1, hour, None, *measure_values(5, hits_exact=2)),
        (2, None, "small", *measure_values(1)),
        (2, None, "large", *measure_values(4, hits_exact=2)),
    ]
    reasons = [("bypass", "no-store", 2), ("error", "unknown", 1)]
    result = stats_result(query, rows, reasons)
    assert (result.tenant, result.requests, result.hits, result.hit_rate) == ("acme", 5, 2, 0.4)
    assert [(b.start, b.requests) for b in result.series] == [(BASE, 0), (BASE + HOUR, 5)]
    assert [m.model for m in result.models] == ["large", "small"]
    assert result.reasons.bypass == {"no-store": 2}
    assert result.reasons.error == {"unknown": 1}
    assert (result.since, result.until, result.bucket) == (BASE, BASE + 2 * HOUR, "hour")


def test_stats_result_without_a_totals_row_is_all_zero() -> None:
    result = stats_result(StatsQuery(), [], [])
    assert (result.requests, result.hit_rate, result.series, result.models) == (0, 0.0, [], [])


def test_hits_and_misses_have_their_own_latency_and_refusals_are_counted() -> None:
    values = [*measure_values(4, hits_exact=1, latencies=[1.0, 2.0, 3.0]), [0.5, 0.6, 0.7], [300.0, 400.0, 500.0]]
    split = measures(values)
    assert (split["hit_latency_ms"].p50, split["miss_latency_ms"].p99) == (0.5, 500.0)
    assert measures(measure_values(1))["hit_latency_ms"].p50 is None  # no such column: none
    result = stats_result(StatsQuery(), [(3, None, None, *values)], [], [("number_mismatch", 3), ("reported", 1)])
    assert result.reasons.refused == {"number_mismatch": 3, "reported": 1}
    assert result.miss_latency_ms.p50 == 300.0


def test_usage_rows_filter_by_namespace_entry_and_request() -> None:
    statement = usage_statement(UsageQuery(tenant="acme", namespace="ns", cache_key="k", request_id="r"))
    query = text(statement.query)
    assert '"namespace" = %s AND "cache_key" = %s AND "request_id" = %s' in query
    assert statement.params[-4:-1] == ["ns", "k", "r"]
