"""Prometheus metrics of the stats consumer's usage-log writes."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

EVENTS_WRITTEN = Counter(
    "llmcache_usage_events_written_total",
    "Usage events inserted into the usage log (redelivered duplicates are not counted).",
)
BATCH_SIZE = Histogram(
    "llmcache_usage_batch_size",
    "Events per usage-log write.",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
)
WRITE_DURATION = Histogram(
    "llmcache_usage_write_duration_seconds",
    "Time to write one batch to the usage log.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
WRITE_FAILURES = Counter(
    "llmcache_usage_write_failures_total",
    "Usage-log batch writes that failed (their messages are retried once, then dead-lettered).",
)
EVENTS_DROPPED = Counter(
    "llmcache_usage_events_dropped_total",
    "Usage events of a batch message dropped because the usage log can't hold them (NUL bytes, out of range).",
)
