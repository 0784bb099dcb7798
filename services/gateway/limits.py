"""Per-key limits, kept in Redis so they hold across every gateway replica.

- Requests per minute: a sliding-window log. Each admitted request adds its time (Redis's own
  clock, so replicas agree) to a sorted set per key; a request is refused while the set already
  holds `rpm_limit` entries from the last 60 seconds, with Retry-After = when the oldest of them
  leaves the window. Exact (never more than the limit in any 60 s), at the cost of one small
  entry per admitted request for a minute. Checked and recorded in one Lua script: atomic.
- Tokens per day: a counter per key per UTC day, incremented after each answer with the
  upstream tokens it used (`record_tokens`; a stream its client left early counts an estimate of
  its prompt and of what it was sent). A request is refused once the day's count has
  reached the limit (the request that crosses it is not cut short: a soft limit), with
  Retry-After = seconds until the next UTC midnight.

A key without limits never touches Redis. When Redis fails the request goes on (fail open):
the failure is logged and counted, never a 500.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from services.gateway.auth import Principal
from services.gateway.errors import ApiError
from services.gateway.metrics import LIMITS_UNAVAILABLE, RATE_LIMITED

log = logging.getLogger(__name__)

DAY_SECONDS = 86_400
# Day counters outlive their day by a day, so a clock a little behind still finds its counter.
DAY_COUNTER_TTL_SECONDS = 2 * DAY_SECONDS
# Seconds between two warnings about Redis: a Redis outage must not flood the log.
WARN_INTERVAL_SECONDS = 10.0

# KEYS[1] request log (sorted set), KEYS[2] today's token counter.
# ARGV[1] rpm limit (0: none), ARGV[2] window in ms, ARGV[3] a unique member, ARGV[4] tokens limit (0: none).
# Returns {verdict, retry_after_ms, remaining}: verdict 0 admitted, 1 over rpm, 2 over tokens per day.
ADMIT_SCRIPT = """
local tokens_limit = tonumber(ARGV[4])
if tokens_limit > 0 then
    local used = tonumber(redis.call('GET', KEYS[2]) or '0')
    if used >= tokens_limit then
        return {2, 0, 0}
    end
end
local rpm = tonumber(ARGV[1])
if rpm <= 0 then
    return {0, 0, -1}
end
local window = tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if count >= rpm then
    -- The window frees up when enough entries have left it to bring the count under the limit.
    local freeing = redis.call('ZRANGE', KEYS[1], count - rpm, count - rpm, 'WITHSCORES')
    return {1, tonumber(freeing[2]) + window - now, 0}
end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], window)
return {0, 0, rpm - count - 1}
"""

ADMITTED, OVER_RPM, OVER_TOKENS = 0, 1, 2


@dataclass(frozen=True)
class Admission:
    """A request let in, and what is left of its key's per-minute budget (None: no rpm limit, or unknown)."""

    rpm_limit: int | None = None
    remaining_requests: int | None = None

    def headers(self) -> dict[str, str]:
        """OpenAI's x-ratelimit-* request headers, when a per-minute limit applies."""
        if self.rpm_limit is None or self.remaining_requests is None:
            return {}
        return {
            "x-ratelimit-limit-requests": str(self.rpm_limit),
            "x-ratelimit-remaining-requests": str(self.remaining_requests),
        }


class Limiter:
    """Per-key requests-per-minute and tokens-per-day limits in Redis (shared by every replica)."""

    def __init__(
        self,
        client: redis.Redis,
        prefix: str,
        *,
        window_seconds: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = client
        self._prefix = f"{prefix}:limits"
        self._window_ms = int(window_seconds * 1000)
        self._clock = clock
        self._admit = client.register_script(ADMIT_SCRIPT)
        self._last_warning = -math.inf

    @classmethod
    def from_url(cls, url: str, prefix: str, *, timeout_seconds: float = 0.5) -> Limiter:
        """A limiter on its own Redis client: short timeouts and no retries, since it fails open."""
        client = redis.from_url(
            url,
            socket_timeout=timeout_seconds,
            socket_connect_timeout=timeout_seconds,
            retry=Retry(NoBackoff(), 0),
        )
        return cls(client, prefix)

    async def close(self) -> None:
        """Close the Redis client (at shutdown)."""
        await self._redis.aclose()

    async def admit(self, principal: Principal) -> Admission:
        """Let a request in or raise ApiError 429: today's tokens, then (counting this request) the minute's."""
        if principal.key_id is None or (principal.rpm_limit is None and principal.tokens_per_day is None):
            return Admission()
        day = self._day()
        try:
            verdict, retry_after_ms, remaining = await self._admit(
                keys=[self._rpm_key(principal.key_id), self._tokens_key(principal.key_id, day)],
                args=[principal.rpm_limit or 0, self._window_ms, uuid.uuid4().hex, principal.tokens_per_day or 0],
            )
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed("admit", exc)
            return Admission(principal.rpm_limit)
        if verdict == OVER_TOKENS:
            raise self._over_tokens(principal)
        if verdict == OVER_RPM:
            RATE_LIMITED.labels("rpm").inc()
            raise ApiError(
                429,
                f"Rate limit reached: {principal.rpm_limit} requests per minute for this API key.",
                code="rate_limit_exceeded",
                headers={
                    "Retry-After": str(max(1, math.ceil(int(retry_after_ms) / 1000))),
                    "x-ratelimit-limit-requests": str(principal.rpm_limit),
                    "x-ratelimit-remaining-requests": "0",
                },
            )
        return Admission(principal.rpm_limit, int(remaining) if principal.rpm_limit else None)

    async def check_tokens(self, principal: Principal) -> None:
        """Raise ApiError 429 when the key's tokens for today are used up (`admit` checks this too)."""
        if principal.key_id is None or principal.tokens_per_day is None:
            return
        try:
            raw = await self._redis.get(self._tokens_key(principal.key_id, self._day()))
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed("check_tokens", exc)
            return
        if int(raw or 0) >= principal.tokens_per_day:
            raise self._over_tokens(principal)

    async def record_tokens(self, principal: Principal, tokens: int) -> None:
        """Count the upstream tokens an answer used against the key's day (keys with a daily limit only)."""
        if principal.key_id is None or principal.tokens_per_day is None or tokens <= 0:
            return
        key = self._tokens_key(principal.key_id, self._day())
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incrby(key, tokens)
                pipe.expire(key, DAY_COUNTER_TTL_SECONDS)
                await pipe.execute()
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed("record_tokens", exc)

    def _over_tokens(self, principal: Principal) -> ApiError:
        RATE_LIMITED.labels("tokens_per_day").inc()
        until_midnight = DAY_SECONDS - int(self._clock()) % DAY_SECONDS
        return ApiError(
            429,
            f"Token limit reached: {principal.tokens_per_day} tokens per day (UTC) for this API key.",
            code="rate_limit_exceeded",
            headers={"Retry-After": str(max(1, until_midnight))},
        )

    def _day(self) -> str:
        return datetime.fromtimestamp(self._clock(), UTC).strftime("%Y%m%d")

    def _rpm_key(self, key_id: str) -> str:
        return f"{self._prefix}:rpm:{key_id}"

    def _tokens_key(self, key_id: str, day: str) -> str:
        return f"{self._prefix}:tpd:{key_id}:{day}"

    def _failed(self, operation: str, exc: BaseException) -> None:
        LIMITS_UNAVAILABLE.labels(operation).inc()
        now = time.monotonic()
        if now - self._last_warning >= WARN_INTERVAL_SECONDS:
            self._last_warning = now
            log.warning("limits unavailable (%s failed: %s): letting requests through", operation, exc)
        else:
            log.debug("limits unavailable (%s failed: %s)", operation, exc)


class InFlightLimit:
    """Requests in flight per tenant in this gateway process: past `limit`, 429 with Retry-After.

    No tenant may hold more than its share of the workers behind the gateway (the LLM worker's upstream
    calls, the cache worker's lookups), however many requests it sends at once. In this process, not
    in Redis: it needs a count per request start and end, and each replica takes its share of the load.
    Requests without a key (AUTH_REQUIRED=false: all one tenant's) are not capped.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._counts: dict[str, int] = {}

    def acquire(self, principal: Principal) -> bool:
        """Count a request in, or raise ApiError 429; True when it is counted (release it when done)."""
        if self.limit <= 0 or principal.key_id is None:
            return False
        held = self._counts.get(principal.tenant, 0)
        if held >= self.limit:
            RATE_LIMITED.labels("in_flight").inc()
            raise ApiError(
                429,
                f"Too many requests in flight for this tenant (at most {self.limit} at once); retry shortly.",
                code="too_many_requests_in_flight",
                headers={"Retry-After": "1"},
            )
        self._counts[principal.tenant] = held + 1
        return True

    def release(self, principal: Principal) -> None:
        held = self._counts.get(principal.tenant, 0) - 1
        if held > 0:
            self._counts[principal.tenant] = held
        else:
            self._counts.pop(principal.tenant, None)
