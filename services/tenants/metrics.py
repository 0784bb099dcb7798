"""Prometheus metrics of the tenants service: what it was asked, how it answered, how long it took."""

from __future__ import annotations

import typing

from prometheus_client import Counter, Histogram

from shared.contracts.tenants import TenantsRequest

REQUESTS = Counter(
    "llmcache_tenants_requests_total",
    "Tenant and key requests answered, by type and outcome (ok; refused: 4xx as data; unavailable: the database).",
    ["type", "outcome"],
)
REQUEST_DURATION = Histogram(
    "llmcache_tenants_request_duration_seconds",
    "Time to answer one request (key resolutions are the gateways' cache misses).",
    ["type"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
REVOCATION_NOTICE_FAILURES = Counter(
    "llmcache_tenants_revocation_notice_failures_total",
    "Revocations not announced to the gateways (each gateway's key cache then drops the key within seconds).",
)

REQUEST_TYPES = tuple(
    model.model_fields["type"].default for model in typing.get_args(typing.get_args(TenantsRequest)[0])
)
OUTCOMES = ("ok", "refused", "unavailable")

# Known label sets start at 0, so a panel or an alert on them shows 0, not "no data", until the first one.
for request_type in REQUEST_TYPES:
    for outcome in OUTCOMES:
        REQUESTS.labels(request_type, outcome)
REVOCATION_NOTICE_FAILURES.inc(0)
