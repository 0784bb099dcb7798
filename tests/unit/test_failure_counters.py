"""The failure counters that panels and alerts read have a sample from the start (0, not "no data"), for
every label set the code counts (other tests in the process may have counted some already)."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client import REGISTRY

from services.cache_worker.metrics import DEGRADED_LABELS
from services.gateway.metrics import LIMIT_OPERATIONS
from services.llm_worker.metrics import PUBLISHED_EVENTS

SERVICES = Path(__file__).resolve().parents[2] / "services"


def used(pattern: str, folder: str) -> set[tuple[str, ...]]:
    """The literal label values a pattern finds in a service's code."""
    return {m.groups() for path in (SERVICES / folder).rglob("*.py") for m in re.finditer(pattern, path.read_text())}


def test_every_dependency_failure_the_cache_worker_counts_starts_at_zero() -> None:
    counted = used(r'DEGRADED\.labels\("(\w+)"(?: if [^,]+ else "\w+")?, "(\w+)"\)', "cache_worker")
    counted |= {("postgres", "reported_pairs")}  # the conditional label above: redis or postgres
    assert counted and counted <= set(DEGRADED_LABELS)
    for dependency, operation in DEGRADED_LABELS:
        sample = REGISTRY.get_sample_value(
            "llmcache_cache_dependency_failures_total", {"dependency": dependency, "operation": operation}
        )
        assert sample is not None


def test_every_limit_check_and_event_publish_counter_starts_at_zero() -> None:
    assert used(r'self\._failed\("(\w+)"', "gateway") == {(op,) for op in LIMIT_OPERATIONS}
    kinds = used(r'Event\([^()]*(?:\([^()]*\)[^()]*)*, "(\w+)"\)', "llm_worker") | used(
        r'EVENT_PUBLISH_FAILURES\.labels\("(\w+)"\)', "llm_worker"
    )
    assert kinds and kinds <= {(event,) for event in PUBLISHED_EVENTS}
    for operation in LIMIT_OPERATIONS:
        assert (
            REGISTRY.get_sample_value("llmcache_gateway_limits_unavailable_total", {"operation": operation}) is not None
        )
    for event in PUBLISHED_EVENTS:
        sample = REGISTRY.get_sample_value("llmcache_llm_worker_event_publish_failures_total", {"event": event})
        assert sample is not None
