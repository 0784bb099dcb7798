"""The LLM worker's Prometheus metrics (base units, llmcache_ prefix)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

UPSTREAM_REQUESTS = Counter(
    "llmcache_upstream_requests_total",
    "Upstream chat completion calls by outcome (ok, error_4xx, error_5xx, error_stream, timeout, unreachable, error).",
    ["outcome"],
)
UPSTREAM_DURATION = Histogram(
    "llmcache_upstream_request_duration_seconds",
    "Time of a whole upstream chat completion call (to the last chunk when streamed).",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120),
)
UPSTREAM_TIME_TO_FIRST_CHUNK = Histogram(
    "llmcache_upstream_time_to_first_chunk_seconds",
    "Time from calling the upstream to its first streamed chunk.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30),
)
EXPIRED = Counter(
    "llmcache_llm_worker_expired_total",
    "Requests dropped unanswered because their deadline had passed on receipt.",
)
NOT_STORED = Counter(
    "llmcache_llm_worker_not_stored_total",
    "Upstream answers not sent to the cache, by reason (tool_calls, finish_reason_length, no_store, bypass, ...).",
    ["reason"],
)
EVENT_PUBLISH_FAILURES = Counter(
    "llmcache_llm_worker_event_publish_failures_total",
    "CompletionGenerated or UsageEvent publishes that failed (the answer was still delivered).",
    ["event"],
)
PUBLISHED_EVENTS = ("completion_generated", "embeddings_generated", "usage", "flight_ended")
for _event in PUBLISHED_EVENTS:  # at 0 from the start: a panel reads 0, not "no data"
    EVENT_PUBLISH_FAILURES.labels(_event)

UPSTREAM_OUTCOMES = ("ok", "error_4xx", "error_5xx", "error_stream", "timeout", "unreachable", "error")


def export_outcomes() -> None:
    """Export every outcome at 0 from the start, so rate() queries work before the first failure."""
    for outcome in UPSTREAM_OUTCOMES:
        UPSTREAM_REQUESTS.labels(outcome)


export_outcomes()
