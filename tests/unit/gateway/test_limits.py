"""Per-key limits against the local Redis (127.0.0.1:6379, a unique key prefix per test): requests per
minute in a sliding window, tokens per UTC day, shared by every limiter on the same Redis, failing open."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
import redis.asyncio as redis
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from services.gateway.auth import Principal
from services.gateway.errors import ApiError
from services.gateway.limits import Admission, InFlightLimit, Limiter
from services.gateway.main import create_app
from services.gateway.settings import Settings

OPERATIONS = ("admit", "check_tokens", "record_tokens")
NOON = datetime(2025, 3, 1, 12, 0, tzinfo=UTC).timestamp()


def key(**limits_: int | None) -> Principal:
    return Principal(tenant="acme", key_id=uuid.uuid4().hex, **limits_)  # type: ignore[arg-type]


async def refused(limiter: Limiter, principal: Principal) -> ApiError:
    with pytest.raises(ApiError) as raised:
        await limiter.admit(principal)
    assert (raised.value.status, raised.value.code) == (429, "rate_limit_exceeded")
    return raised.value


async def test_requests_over_the_per_minute_limit_are_refused_with_retry_after(
    local_redis: redis.Redis, redis_prefix: str
) -> None:
    limiter = Limiter(local_redis, redis_prefix)
    principal = key(rpm_limit=3)
    admitted = [await limiter.admit(principal) for _ in range(3)]
    assert [a.remaining_requests for a in admitted] == [2, 1, 0]
    assert admitted[0].headers() == {"x-ratelimit-limit-requests": "3", "x-ratelimit-remaining-requests": "2"}
    error = await refused(limiter, principal)
    assert 59 <= int(error.headers["Retry-After"]) <= 60
    assert error.headers["x-ratelimit-remaining-requests"] == "0"
    await refused(limiter, principal)  # a refused request does not count: the window frees as announced
    assert (await limiter.admit(key(rpm_limit=3))).remaining_requests == 2  # other keys are not affected


async def test_the_window_slides(local_redis: redis.Redis, redis_prefix: str) -> None:
    limiter = Limiter(local_redis, redis_prefix, window_seconds=1.0)
    principal = key(rpm_limit=2)
    await limiter.admit(principal)
    await asyncio.sleep(0.5)
    await limiter.admit(principal)
    error = await refused(limiter, principal)
    assert error.headers["Retry-After"] == "1"  # ~0.5 s from now, rounded up to whole seconds
    await asyncio.sleep(0.65)  # the first request has left the window, the second has not
    await limiter.admit(principal)
    await refused(limiter, principal)


async def test_every_replica_shares_the_limit(local_redis: redis.Redis, redis_prefix: str) -> None:
    replicas = [Limiter(local_redis, redis_prefix) for _ in range(3)]
    principal = key(rpm_limit=10)
    outcomes = await asyncio.gather(*(replicas[i % 3].admit(principal) for i in range(25)), return_exceptions=True)
    assert sum(isinstance(o, Admission) for o in outcomes) == 10
    assert sum(isinstance(o, ApiError) and o.status == 429 for o in outcomes) == 15


async def test_tokens_per_day_refuse_once_reached_until_midnight(local_redis: redis.Redis, redis_prefix: str) -> None:
    limiter = Limiter(local_redis, redis_prefix, clock=lambda: NOON)
    principal = key(tokens_per_day=100)
    await limiter.check_tokens(principal)
    await limiter.admit(principal)
    await limiter.record_tokens(principal, 60)
    await limiter.check_tokens(principal)
    await limiter.admit(principal)  # 60 < 100: in, and may go over (a soft limit)
    await limiter.record_tokens(principal, 60)
    error = await refused(limiter, principal)
    assert error.headers["Retry-After"] == str(12 * 3600)
    with pytest.raises(ApiError) as raised:
        await limiter.check_tokens(principal)
    assert raised.value.status == 429
    assert "tokens per day" in raised.value.message
    tomorrow = Limiter(local_redis, redis_prefix, clock=lambda: NOON + 86_400)
    await tomorrow.admit(principal)


async def test_the_day_counter_expires(local_redis: redis.Redis, redis_prefix: str) -> None:
    limiter = Limiter(local_redis, redis_prefix, clock=lambda: NOON)
    principal = key(tokens_per_day=100)
    await limiter.record_tokens(principal, 5)
    [counter] = [k async for k in local_redis.scan_iter(f"{redis_prefix}:limits:tpd:*")]
    assert counter.endswith(b":20250301")
    assert 0 < await local_redis.ttl(counter) <= 2 * 86_400


async def test_a_request_over_its_tokens_does_not_use_up_its_requests(
    local_redis: redis.Redis, redis_prefix: str
) -> None:
    limiter = Limiter(local_redis, redis_prefix, clock=lambda: NOON)
    principal = key(rpm_limit=2, tokens_per_day=10)
    await limiter.record_tokens(principal, 10)
    for _ in range(3):
        await refused(limiter, principal)
    assert await local_redis.zcard(f"{redis_prefix}:limits:rpm:{principal.key_id}") == 0


def unavailable(operation: str) -> float:
    return REGISTRY.get_sample_value("llmcache_gateway_limits_unavailable_total", {"operation": operation}) or 0.0


async def test_keys_without_limits_never_touch_redis(redis_prefix: str) -> None:
    limiter = Limiter.from_url("redis://127.0.0.1:1/0", redis_prefix)  # nothing listens there
    before = [unavailable(op) for op in OPERATIONS]
    try:
        for principal in (Principal(tenant="default"), key()):
            assert await limiter.admit(principal) == Admission()
            await limiter.check_tokens(principal)
            await limiter.record_tokens(principal, 100)
    finally:
        await limiter.close()
    assert [unavailable(op) for op in OPERATIONS] == before


async def test_redis_down_fails_open_and_is_counted(redis_prefix: str) -> None:
    limiter = Limiter.from_url("redis://127.0.0.1:1/0", redis_prefix, timeout_seconds=0.2)
    before = {op: unavailable(op) for op in OPERATIONS}
    principal = key(rpm_limit=1, tokens_per_day=1)
    try:
        for _ in range(3):
            assert await limiter.admit(principal) == Admission(1)
        await limiter.check_tokens(principal)
        await limiter.record_tokens(principal, 10)
    finally:
        await limiter.close()
    after = {op: unavailable(op) for op in OPERATIONS}
    assert after["admit"] - before["admit"] == 3
    assert after["check_tokens"] - before["check_tokens"] == 1
    assert after["record_tokens"] - before["record_tokens"] == 1


def test_a_request_refused_for_its_tenants_share_in_flight_costs_no_rpm_slot() -> None:
    principal = Principal(tenant="acme", key_id="k1", rpm_limit=10)
    admitted: list[Principal] = []

    class Keys:
        async def authenticate(self, token: str | None, address: str | None = None) -> Principal:
            return principal

    class CountingLimiter:
        async def admit(self, who: Principal) -> Admission:
            admitted.append(who)
            return Admission(10, 9)

    in_flight = InFlightLimit(1)
    assert in_flight.acquire(principal)  # the tenant's one request in flight
    inbox = SimpleNamespace(open=lambda request_id: asyncio.Queue(), close=lambda request_id: None)
    settings = Settings()
    app = create_app(settings)
    app.state.gateway = SimpleNamespace(
        settings=settings, auth=Keys(), in_flight=in_flight, limiter=CountingLimiter(), inbox=inbox
    )
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    response = TestClient(app).post("/v1/chat/completions", json=body, headers={"Authorization": "Bearer k"})
    assert response.status_code == 429 and response.json()["error"]["code"] == "too_many_requests_in_flight"
    assert admitted == []  # its rpm slot was never taken
