"""The gateway's Prometheus metrics."""

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter(
    "llmcache_gateway_requests_total",
    "Chat completion requests answered, by HTTP status class, cache result and whether streamed.",
    ["status", "cache", "stream"],
)
LATENCY = Histogram(
    "llmcache_gateway_request_duration_seconds",
    "Time from request received to the first byte of the answer (headers), by cache result.",
    ["cache", "stream"],
    buckets=(0.001, 0.002, 0.003, 0.005, 0.008, 0.012, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
IN_FLIGHT = Gauge("llmcache_gateway_requests_in_flight", "Requests waiting for their reply.")

# Keys (auth.py)
KEY_RESOLUTIONS = Counter(
    "llmcache_gateway_key_resolutions_total",
    "API key look-ups by where the answer came from (cache, tenants, stale) and result (valid, invalid, unavailable).",
    ["source", "result"],
)
AUTH_REFUSED = Counter(
    "llmcache_gateway_auth_throttled_total",
    "Requests refused (429) because their client address sent too many unknown keys lately.",
)
KEYS_REVOKED = Counter("llmcache_gateway_key_revocations_total", "KeyRevoked notices this process acted on.")

# Limits (limits.py)
RATE_LIMITED = Counter(
    "llmcache_gateway_rate_limited_total",
    "Requests refused with 429, by the limit they hit (rpm, tokens_per_day, in_flight).",
    ["limit"],
)
LIMITS_UNAVAILABLE = Counter(
    "llmcache_gateway_limits_unavailable_total",
    "Limit checks or token records skipped because Redis failed (the request went on: fail open).",
    ["operation"],
)
LIMIT_OPERATIONS = ("admit", "check_tokens", "record_tokens")
for _operation in LIMIT_OPERATIONS:  # at 0 from the start: a panel reads 0, not "no data"
    LIMITS_UNAVAILABLE.labels(_operation)
