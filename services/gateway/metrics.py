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
