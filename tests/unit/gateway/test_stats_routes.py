"""The stats API routes with a fake stats consumer: parameters, defaults, admin/tenant rules, errors."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from pydantic import BaseModel, SecretStr

from services.gateway import errors
from services.gateway.auth import Principal
from services.gateway.errors import ApiError
from services.gateway.routes import stats
from shared.contracts.base import ErrorInfo
from shared.contracts.stats import StatsQuery, StatsResult, UsagePage, UsageQuery, UsageRecord
from shared.rpc import RemoteError, RpcTimeout

ADMIN_KEY = "admin-secret"
TENANT_KEYS = {"acme-key": "acme", "globex-key": "globex"}
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
ACME = {"Authorization": "Bearer acme-key"}
HOUR, DAY = 3600, 86400


def stats_result(**fields: Any) -> StatsResult:
    totals = dict.fromkeys(
        ("requests", "hits", "hits_exact", "hits_semantic", "misses", "bypasses", "errors", "hit_rate",
         "prompt_tokens", "completion_tokens", "tokens_saved", "cost_usd", "cost_saved_usd"),
        0,
    )  # fmt: skip
    return StatsResult.model_validate({"tenant": None, **totals, **fields})


RECORD = UsageRecord(
    event_id="e1", request_id="r1", tenant="acme", key_id="k1", namespace="default", model="m", result="miss",
    reason=None, prompt_tokens=1, completion_tokens=2, cost_usd=0.5, tokens_saved=0, cost_saved_usd=0.0,
    latency_ms=12.0, created_at=1_700_000_000.0,
)  # fmt: skip


class FakeRpc:
    """Records each call; answers with a canned result (echoing the tenant of a stats query) or raises."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, BaseModel, type[BaseModel], float]] = []
        self.fail: Exception | None = None
        self.page = UsagePage(items=[RECORD], next_cursor="c2")

    async def call(self, routing_key: str, request: BaseModel, result_type: type[BaseModel], timeout: float) -> Any:
        self.calls.append((routing_key, request, result_type, timeout))
        if self.fail is not None:
            raise self.fail
        if isinstance(request, StatsQuery):
            return stats_result(tenant=request.tenant, requests=3, since=request.since, until=request.until)
        return self.page

    @property
    def last(self) -> Any:
        return self.calls[-1][1]


async def fake_authenticate(request: Request) -> Principal:
    """Tenant keys by table: whatever the real authenticate() becomes, these tests don't depend on it."""
    token = request.headers.get("authorization", "").removeprefix("Bearer ")
    if token not in TENANT_KEYS:
        raise ApiError(401, "Invalid API key.", code="invalid_api_key")
    return Principal(tenant=TENANT_KEYS[token], key_id=f"id-{token}")


@pytest.fixture
def rpc() -> FakeRpc:
    return FakeRpc()


@pytest.fixture
def settings() -> SimpleNamespace:
    return SimpleNamespace(admin_api_key=SecretStr(ADMIN_KEY), control_timeout_seconds=0.5, default_tenant="default")


@pytest.fixture
def client(rpc: FakeRpc, settings: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setattr(stats, "authenticate", fake_authenticate)
    app = FastAPI()
    errors.install(app)
    app.include_router(stats.router)
    app.state.gateway = SimpleNamespace(
        settings=settings, topology=SimpleNamespace(stats_query="t.stats.query"), rpc=rpc
    )
    return TestClient(app)


def assert_error(response: Any, status: int, param: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    if param is not None:
        assert error["param"] == param
    return error


# --- GET /api/v1/cache/stats ---------------------------------------------------------------------


def test_a_tenant_gets_its_own_stats_for_the_last_24_hours(client: TestClient, rpc: FakeRpc) -> None:
    before = datetime.now(UTC).timestamp()
    response = client.get("/api/v1/cache/stats", headers=ACME)
    after = datetime.now(UTC).timestamp()

    assert response.status_code == 200
    body = response.json()
    assert (body["tenant"], body["requests"]) == ("acme", 3)
    assert {"hits", "hit_rate", "cost_saved_usd", "latency_ms", "series", "models", "reasons"} <= set(body)
    assert "v" not in body and "type" not in body
    [(routing_key, query, result_type, timeout)] = rpc.calls
    assert (routing_key, result_type, timeout) == ("t.stats.query", StatsResult, 2.5)
    assert isinstance(query, StatsQuery) and query.since is not None and query.until is not None
    assert (query.tenant, query.bucket) == ("acme", "hour")
    assert before <= query.until <= after
    assert query.until - query.since == 24 * HOUR


def test_day_buckets_default_to_30_days(client: TestClient, rpc: FakeRpc) -> None:
    assert client.get("/api/v1/cache/stats?bucket=day", headers=ACME).status_code == 200
    assert rpc.last.bucket == "day"
    assert rpc.last.until - rpc.last.since == 30 * DAY


def test_window_bounds_accept_iso_and_epoch(client: TestClient, rpc: FakeRpc) -> None:
    response = client.get(
        "/api/v1/cache/stats",
        params={"since": "2024-01-01T00:00:00Z", "until": "1704074400"},
        headers=ACME,
    )
    assert response.status_code == 200
    assert (rpc.last.since, rpc.last.until) == (1704067200.0, 1704074400.0)


def test_only_until_given_goes_back_one_default_window(client: TestClient, rpc: FakeRpc) -> None:
    assert client.get("/api/v1/cache/stats", params={"until": "1704074400"}, headers=ACME).status_code == 200
    assert (rpc.last.since, rpc.last.until) == (1704074400.0 - 24 * HOUR, 1704074400.0)


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"bucket": "week"}, "bucket"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2024-01-01T00:00:00 00:00"}, "since"),  # an unencoded '+' arrives as a space
        ({"until": "nan"}, "until"),
        ({"until": "inf"}, "until"),
        ({"until": "1e300"}, "until"),
        ({"since": "1704074400", "until": "1704074400"}, "since"),
        ({"since": "2024-01-02", "until": "2024-01-01"}, "since"),
        ({"since": "2020-01-01", "until": "2024-01-01"}, "bucket"),  # 35,000 hourly buckets
        ({"tenant": ""}, "tenant"),
    ],
)
def test_bad_stats_parameters_are_400(client: TestClient, rpc: FakeRpc, params: dict[str, str], param: str) -> None:
    error = assert_error(client.get("/api/v1/cache/stats", params=params, headers=ACME), 400, param)
    assert error["type"] == "invalid_request_error"
    assert rpc.calls == []


def test_years_of_days_are_fine(client: TestClient, rpc: FakeRpc) -> None:
    params = {"bucket": "day", "since": "2020-01-01", "until": "2024-01-01"}
    assert client.get("/api/v1/cache/stats", params=params, headers=ACME).status_code == 200


def test_a_tenant_may_name_itself_but_no_other(client: TestClient, rpc: FakeRpc) -> None:
    assert client.get("/api/v1/cache/stats?tenant=acme", headers=ACME).status_code == 200
    assert rpc.last.tenant == "acme"

    error = assert_error(client.get("/api/v1/cache/stats?tenant=globex", headers=ACME), 403, "tenant")
    assert (error["type"], error["code"]) == ("permission_error", "tenant_forbidden")
    assert len(rpc.calls) == 1


def test_an_admin_sees_any_tenant_or_all(client: TestClient, rpc: FakeRpc) -> None:
    assert client.get("/api/v1/cache/stats?tenant=globex", headers=ADMIN).status_code == 200
    assert rpc.last.tenant == "globex"
    response = client.get("/api/v1/cache/stats", headers=ADMIN)
    assert response.status_code == 200
    assert rpc.last.tenant is None
    assert response.json()["tenant"] is None


def test_a_wrong_key_is_left_to_authenticate(client: TestClient, rpc: FakeRpc) -> None:
    assert_error(client.get("/api/v1/cache/stats", headers={"Authorization": "Bearer nope"}), 401)
    assert_error(client.get("/api/v1/cache/stats"), 401)
    assert rpc.calls == []


def test_with_the_admin_api_disabled_tenants_still_get_their_stats(
    client: TestClient, rpc: FakeRpc, settings: SimpleNamespace
) -> None:
    settings.admin_api_key = SecretStr("")
    assert client.get("/api/v1/cache/stats", headers=ACME).status_code == 200
    assert rpc.last.tenant == "acme"
    assert_error(client.get("/api/v1/cache/stats", headers={"Authorization": "Bearer "}), 401)


def test_a_silent_stats_consumer_is_503_with_retry_after(client: TestClient, rpc: FakeRpc) -> None:
    rpc.fail = RpcTimeout("no reply")
    response = client.get("/api/v1/cache/stats", headers=ACME)
    assert_error(response, 503)
    assert response.headers["retry-after"] == "1"


def test_an_error_reply_keeps_its_status_and_type(client: TestClient, rpc: FakeRpc) -> None:
    rpc.fail = RemoteError(ErrorInfo(type="stats_unavailable", message="usage statistics are unavailable", status=503))
    error = assert_error(client.get("/api/v1/cache/stats", headers=ACME), 503)
    assert (error["type"], error["message"]) == ("stats_unavailable", "usage statistics are unavailable")


# --- GET /api/v1/usage ---------------------------------------------------------------------------


def test_usage_page_shape_and_defaults(client: TestClient, rpc: FakeRpc) -> None:
    response = client.get("/api/v1/usage", headers=ACME)
    assert response.status_code == 200
    assert response.json() == {
        "object": "list",
        "data": [RECORD.model_dump()],
        "has_more": True,
        "next_cursor": "c2",
    }
    [(_, query, result_type, _)] = rpc.calls
    assert result_type is UsagePage
    assert query == UsageQuery(tenant="acme")  # limit 50, no filters, no time bounds


def test_the_last_page_has_no_more(client: TestClient, rpc: FakeRpc) -> None:
    rpc.page = UsagePage(items=[], next_cursor=None)
    body = client.get("/api/v1/usage", headers=ACME).json()
    assert (body["data"], body["has_more"], body["next_cursor"]) == ([], False, None)


def test_usage_filters_and_cursor_are_passed_on(client: TestClient, rpc: FakeRpc) -> None:
    params = {
        "limit": "500", "cursor": "abc", "model": "gpt-4o", "result": "hit_semantic", "key_id": "k1",
        "since": "2024-01-01", "until": "2024-01-02T00:00:00+01:00",
    }  # fmt: skip
    assert client.get("/api/v1/usage", params=params, headers=ACME).status_code == 200
    assert rpc.last == UsageQuery(
        tenant="acme", limit=500, cursor="abc", model="gpt-4o", result="hit_semantic", key_id="k1",
        since=1704067200.0, until=1704150000.0,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"result": "hit"}, "result"),
        ({"cursor": ""}, "cursor"),
        ({"cursor": "x" * 2000}, "cursor"),
        ({"model": ""}, "model"),
        ({"key_id": "a\x00b"}, "key_id"),
        ({"since": "soon"}, "since"),
        ({"since": "2024-01-02", "until": "2024-01-01"}, "since"),
        ({"until": "9999-12-31T23:59:59-14:00"}, "until"),  # year 10000 in UTC: the consumer can't read it
        ({"since": "0001-01-01T00:00:00+01:00"}, "since"),  # year 0 in UTC
    ],
)
def test_bad_usage_parameters_are_400(client: TestClient, rpc: FakeRpc, params: dict[str, str], param: str) -> None:
    assert_error(client.get("/api/v1/usage", params=params, headers=ACME), 400, param)
    assert rpc.calls == []


def test_usage_tenant_rules(client: TestClient, rpc: FakeRpc) -> None:
    assert_error(client.get("/api/v1/usage?tenant=acme", headers={"Authorization": "Bearer globex-key"}), 403)
    assert client.get("/api/v1/usage?tenant=acme", headers=ADMIN).status_code == 200
    assert rpc.last.tenant == "acme"
    assert client.get("/api/v1/usage", headers=ADMIN).status_code == 200
    assert rpc.last.tenant is None


def test_a_refused_cursor_is_a_400_on_cursor(client: TestClient, rpc: FakeRpc) -> None:
    refused = ErrorInfo(type="invalid_request_error", message="not a cursor", status=400, code="invalid_cursor")
    rpc.fail = RemoteError(refused)
    error = assert_error(client.get("/api/v1/usage?cursor=forged", headers=ACME), 400, "cursor")
    assert error["code"] == "invalid_cursor"


# --- the pure helpers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1704067200", 1704067200.0),
        ("1704067200.25", 1704067200.25),
        (" 1704067200 ", 1704067200.0),
        ("2024-01-01", 1704067200.0),
        ("2024-01-01T00:00:00", 1704067200.0),  # no zone: UTC
        ("2024-01-01T00:00:00Z", 1704067200.0),
        ("2024-01-01T02:00:00+02:00", 1704067200.0),
        ("2024-01-01T00:00:00.5Z", 1704067200.5),
    ],
)
def test_parse_time(text: str, expected: float) -> None:
    assert stats.parse_time(text, "since") == expected


def test_parse_time_of_nothing_is_none() -> None:
    assert stats.parse_time(None, "since") is None


def test_stats_window_defaults_from_now() -> None:
    window = stats.stats_window("hour", None, None, now=1_000_000.0)
    assert (window.since, window.until, window.bucket) == (1_000_000.0 - 24 * HOUR, 1_000_000.0, "hour")
    window = stats.stats_window("day", "500000", None, now=1_000_000.0)
    assert (window.since, window.until) == (500_000.0, 1_000_000.0)


def test_scoped_tenant() -> None:
    admin, acme = Principal(tenant="*", is_admin=True), Principal(tenant="acme")
    assert stats.scoped_tenant(admin, None) is None
    assert stats.scoped_tenant(admin, "globex") == "globex"
    assert stats.scoped_tenant(acme, None) == "acme"
    assert stats.scoped_tenant(acme, "acme") == "acme"
    with pytest.raises(ApiError) as refused:
        stats.scoped_tenant(acme, "globex")
    assert refused.value.status == 403
