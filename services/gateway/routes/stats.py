"""The stats API: usage aggregates (GET /api/v1/cache/stats) and the usage log (GET /api/v1/usage).

A tenant sees only its own usage; a caller with the admin API key sees any one tenant's
(`?tenant=`) or everyone's (no `tenant`). The stats consumer answers both over RPC; this module
checks who may ask what, turns query parameters into a StatsQuery or UsageQuery and the replies
into JSON.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, TypeVar

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from services.gateway.auth import ADMIN, Principal, authenticate, is_admin_key
from services.gateway.errors import ApiError
from services.gateway.service_calls import call_service
from services.gateway.state import GatewayState
from shared.contracts.stats import StatsBucketSize, StatsQuery, StatsResult, UsagePage, UsageQuery
from shared.contracts.usage_events import UsageResult

router = APIRouter()

ResultT = TypeVar("ResultT", bound=BaseModel)

BUCKET_SECONDS: dict[StatsBucketSize, int] = {"hour": 3600, "day": 86400}
# The window when the caller gives no `since`: a day of hours, a month of days.
DEFAULT_WINDOW_SECONDS: dict[StatsBucketSize, int] = {"hour": 24 * 3600, "day": 30 * 86400}
# Longest series one request may ask for: 83 days of hours, 5 years of days.
MAX_BUCKETS = 2000
MAX_TEXT_PARAM = 256
MAX_CURSOR_LENGTH = 1024


@dataclass(frozen=True)
class StatsWindow:
    """The time window and bucket size of a stats request, in epoch seconds."""

    since: float
    until: float
    bucket: StatsBucketSize


async def admin_or_tenant(request: Request) -> Principal:
    """The caller: an admin if it presents the admin API key, otherwise whoever authenticate() says."""
    if is_admin_key(request):
        return ADMIN
    return await authenticate(request)


def scoped_tenant(principal: Principal, requested: str | None) -> str | None:
    """The tenant whose usage a caller sees: an admin's pick (None: all), a tenant's own, or 403."""
    if principal.is_admin:
        return requested
    if requested is not None and requested != principal.tenant:
        raise ApiError(403, "This key may only read its own tenant's usage.", code="tenant_forbidden", param="tenant")
    return principal.tenant


def text_param(value: str | None, param: str) -> str | None:
    """A free-text filter as given, or 400 if the database could not hold it."""
    if value is None:
        return None
    if not value or len(value) > MAX_TEXT_PARAM or "\x00" in value:
        raise ApiError(400, f"'{param}' must be 1 to {MAX_TEXT_PARAM} characters.", param=param)
    return value


def parse_time(value: str | None, param: str) -> float | None:
    """An ISO-8601 time (UTC if it names no zone) or epoch seconds, as epoch seconds; 400 if neither."""
    if value is None:
        return None
    text = value.strip()
    try:
        moment = float(text)
    except ValueError:
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise ApiError(
                400,
                f"'{param}' must be an ISO-8601 time or epoch seconds (in a URL, write a zone's '+' as %2B).",
                param=param,
            ) from None
        return epoch_of(parsed, param)
    if not math.isfinite(moment):
        raise ApiError(400, f"'{param}' must be a finite number of epoch seconds.", param=param)
    return in_range(moment, param)


def epoch_of(moment: datetime, param: str) -> float:
    """A time (UTC if it names no zone) as epoch seconds; 400 if, in UTC, it falls outside years 1 to 9999
    (the workers turn it back into a datetime: 9999-12-31T23:59:59-14:00 is in year 10000 there)."""
    try:
        seconds = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    except (ValueError, OverflowError):
        raise ApiError(400, f"'{param}' is out of range.", param=param) from None
    return in_range(seconds, param)


def in_range(seconds: float, param: str) -> float:
    try:
        datetime.fromtimestamp(seconds, tz=UTC)
    except (ValueError, OverflowError, OSError):
        raise ApiError(400, f"'{param}' is out of range.", param=param) from None
    return seconds


def stats_window(bucket: StatsBucketSize, since: str | None, until: str | None, now: float) -> StatsWindow:
    """The window asked for, with defaults: until now, since one default window before until."""
    end = parse_time(until, "until")
    end = now if end is None else end
    start = parse_time(since, "since")
    start = end - DEFAULT_WINDOW_SECONDS[bucket] if start is None else start
    if start >= end:
        raise ApiError(400, "'since' must be before 'until'.", param="since")
    if (end - start) / BUCKET_SECONDS[bucket] > MAX_BUCKETS:
        raise ApiError(
            400, f"That window has more than {MAX_BUCKETS} {bucket} buckets: narrow it or use bigger buckets.",
            param="bucket",
        )  # fmt: skip
    return StatsWindow(since=start, until=end, bucket=bucket)


def usage_window(since: str | None, until: str | None) -> tuple[float | None, float | None]:
    """The optional time bounds of a usage-log request (None: unbounded)."""
    start, end = parse_time(since, "since"), parse_time(until, "until")
    if start is not None and end is not None and start >= end:
        raise ApiError(400, "'since' must be before 'until'.", param="since")
    return start, end


async def ask_stats_consumer(request: Request, query: BaseModel, result_type: type[ResultT]) -> ResultT:
    """One RPC to the stats consumer; its silence becomes 503 and its error replies their own status."""
    state: GatewayState = request.app.state.gateway
    return await call_service(
        state,
        state.topology.stats_query,
        query,
        result_type,
        "stats service",
        param_of=lambda code: "cursor" if code == "invalid_cursor" else None,
    )


@router.get("/api/v1/cache/stats")
async def cache_stats(
    request: Request,
    principal: Annotated[Principal, Depends(admin_or_tenant)],
    bucket: StatsBucketSize = "hour",
    since: str | None = None,
    until: str | None = None,
    tenant: str | None = None,
) -> Response:
    """Totals, a time series, latency percentiles, a per-model breakdown and bypass/error reasons."""
    window = stats_window(bucket, since, until, now=datetime.now(UTC).timestamp())
    query = StatsQuery(
        tenant=scoped_tenant(principal, text_param(tenant, "tenant")),
        since=window.since,
        until=window.until,
        bucket=window.bucket,
    )
    result = await ask_stats_consumer(request, query, StatsResult)
    return Response(result.model_dump_json(exclude={"v", "type"}), media_type="application/json")


@router.get("/api/v1/usage")
async def usage_log(
    request: Request,
    principal: Annotated[Principal, Depends(admin_or_tenant)],
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(min_length=1, max_length=MAX_CURSOR_LENGTH)] = None,
    model: str | None = None,
    result: UsageResult | None = None,
    key_id: str | None = None,
    since: str | None = None,
    until: str | None = None,
    tenant: str | None = None,
    namespace: str | None = None,
    cache_key: str | None = None,
    request_id: str | None = None,
) -> Response:
    """The usage log, newest first; pass `next_cursor` back as `cursor` for the next page.

    Each row names the entry behind its answer (`cache_key`: a hit's entry, or the key a miss's
    answer is stored under), the similarity of a semantic match (a miss: its nearest refused
    candidate's) and why semantic candidates were refused (`refusals`).
    """
    start, end = usage_window(since, until)
    query = UsageQuery(
        tenant=scoped_tenant(principal, text_param(tenant, "tenant")),
        model=text_param(model, "model"),
        result=result,
        key_id=text_param(key_id, "key_id"),
        since=start,
        until=end,
        limit=limit,
        cursor=cursor,
        namespace=text_param(namespace, "namespace"),
        cache_key=text_param(cache_key, "cache_key"),
        request_id=text_param(request_id, "request_id"),
    )
    page = await ask_stats_consumer(request, query, UsagePage)
    body = {
        "object": "list",
        "data": [item.model_dump() for item in page.items],
        "has_more": page.next_cursor is not None,
        "next_cursor": page.next_cursor,
    }
    return Response(orjson.dumps(body), media_type="application/json")
