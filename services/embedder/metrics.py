"""The embedder's Prometheus metrics (llmcache_ prefix, base units)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

REQUESTS = Counter(
    "llmcache_embedder_requests_total",
    "Embedding requests answered, by outcome (ok, error, invalid).",
    ["outcome"],
)
BATCH_SIZE = Histogram(
    "llmcache_embedder_batch_size",
    "Distinct texts per provider call.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
BATCH_DURATION = Histogram(
    "llmcache_embedder_batch_duration_seconds",
    "Time of one provider call for a whole batch.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
QUEUE_WAIT = Histogram(
    "llmcache_embedder_queue_wait_seconds",
    "Time a text waited in the batcher before its batch was sent to the provider.",
    buckets=(0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
