"""Writes deploy/grafana/dashboards/llm-cache-proxy.json, the provisioned Grafana dashboard.

The dashboard is generated so its queries stay readable and reviewable here; the JSON is
committed for Grafana to provision. Regenerate: python deploy/grafana/build_dashboard.py
(tests/deploy checks the JSON is current and that every metric it queries is exported).
Savings (tokens and USD) come from the usage log in PostgreSQL, not from Prometheus.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OUT = Path(__file__).parent / "dashboards" / "llm-cache-proxy.json"
PROM = {"type": "prometheus", "uid": "prometheus"}
PG = {"type": "grafana-postgresql-datasource", "uid": "llmcache-postgres"}
JAEGER = {"type": "jaeger", "uid": "jaeger"}
RATE = "$__rate_interval"
# The queues of the default BROKER_PREFIX (shared/topology.py), as a PromQL regex.
QUEUE_NAMES = (
    "cache.lookup cache.store cache.admin llm.request embed.rpc usage.events stats.query tenants.rpc dead_letters"
)
QUEUES = "llmcache\\\\.(" + "|".join(name.replace(".", "\\\\.") for name in QUEUE_NAMES.split()) + ")"


class Layout:
    """Places panels left to right on Grafana's 24-column grid, with rows between sections."""

    def __init__(self) -> None:
        self.panels: list[dict[str, Any]] = []
        self.x = self.y = 0
        self.row_height = 0

    def row(self, title: str) -> None:
        self._newline()
        self._add({"type": "row", "title": title, "collapsed": False, "panels": []}, 24, 1)
        self._newline()

    def panel(self, panel: dict[str, Any], w: int = 12, h: int = 8) -> None:
        if self.x + w > 24:
            self._newline()
        self._add(panel, w, h)

    def _add(self, panel: dict[str, Any], w: int, h: int) -> None:
        panel["id"] = len(self.panels) + 1
        panel["gridPos"] = {"x": self.x, "y": self.y, "w": w, "h": h}
        self.panels.append(panel)
        self.x += w
        self.row_height = max(self.row_height, h)

    def _newline(self) -> None:
        if self.x:
            self.y += self.row_height
        self.x, self.row_height = 0, 0


def prom(expr: str, legend: str) -> dict[str, Any]:
    return {"datasource": PROM, "expr": expr, "legendFormat": legend, "range": True}


def timeseries(title: str, targets: list[dict[str, Any]], unit: str, description: str = "") -> dict[str, Any]:
    for ref, target in zip("ABCDEFGHIJ", targets, strict=False):
        target["refId"] = ref
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": targets[0]["datasource"],
        "targets": targets,
        "fieldConfig": {"defaults": {"unit": unit, "custom": {"lineWidth": 1, "fillOpacity": 10}}, "overrides": []},
        "options": {"legend": {"displayMode": "table", "placement": "right"}, "tooltip": {"mode": "multi"}},
    }


def stat(title: str, targets: list[dict[str, Any]], unit: str, description: str = "") -> dict[str, Any]:
    panel = timeseries(title, targets, unit, description)
    panel["type"] = "stat"
    panel["options"] = {
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "colorMode": "value",
    }
    return panel


def percentiles(metric: str, by: str, legend: str) -> list[dict[str, Any]]:
    return [
        prom(f"histogram_quantile({q}, sum by (le{by}) (rate({metric}_bucket[{RATE}])))", f"p{int(q * 100)} {legend}")
        for q in (0.5, 0.9, 0.99)
    ]


def sql(query: str, fmt: str = "time_series") -> dict[str, Any]:
    return {"datasource": PG, "rawSql": query, "format": fmt, "rawQuery": True, "editorMode": "code"}


def traces(title: str, tags: str, description: str) -> dict[str, Any]:
    """A table of the gateway's traces (Jaeger search); each trace id opens the request's waterfall."""
    target = {
        "datasource": JAEGER,
        "refId": "A",
        "queryType": "search",
        "service": "llmcache-gateway",
        "tags": tags,
        "limit": 20,
    }
    return {"type": "table", "title": title, "description": description, "datasource": JAEGER, "targets": [target]}


def build() -> dict[str, Any]:
    lay = Layout()
    hits = f'sum(rate(llmcache_cache_lookups_total{{result=~"hit_.*"}}[{RATE}]))'
    looked_up = f'sum(rate(llmcache_cache_lookups_total{{result!="bypass"}}[{RATE}]))'

    lay.row("Traffic and hit rate")
    lay.panel(
        timeseries(
            "Requests by cache result",
            [prom(f"sum by (cache) (rate(llmcache_gateway_requests_total[{RATE}]))", "{{cache}}")],
            "reqps",
            "Chat completion requests answered by the gateway: HIT, MISS, BYPASS or ERROR.",
        ),
        w=12,
    )
    lay.panel(
        stat(
            "Hit rate",
            [prom(f"{hits} / {looked_up}", "hit rate")],
            "percentunit",
            "Hits / (hits + misses), bypasses excluded.",
        ),
        w=4,
    )
    lay.panel(
        timeseries(
            "Hit rate by match",
            [
                prom(
                    f'sum by (result) (rate(llmcache_cache_lookups_total{{result=~"hit_.*"}}[{RATE}]))'
                    f" / ignoring(result) group_left {looked_up}",
                    "{{result}}",
                )
            ],
            "percentunit",
            "Exact (Redis) and semantic (pgvector) hits as a share of cacheable lookups.",
        ),
        w=8,
    )

    lay.row("Tokens and cost saved (usage log, PostgreSQL)")
    lay.panel(
        stat(
            "Saved and spent in the range",
            [
                sql(
                    'SELECT coalesce(sum(tokens_saved), 0) AS "tokens saved", '
                    'coalesce(sum(cost_saved_usd), 0) AS "USD saved", '
                    'coalesce(sum(cost_usd), 0) AS "USD spent" FROM usage_events WHERE $__timeFilter(created_at)',
                    "table",
                )
            ],
            "short",
            "From the usage log the stats consumer writes: what hits saved (the stored answer's price)"
            " and what misses cost.",
        ),
        w=8,
    )
    lay.panel(
        timeseries(
            "Tokens saved",
            [
                sql(
                    "SELECT $__timeGroupAlias(created_at, $__interval), "
                    'coalesce(sum(tokens_saved), 0) AS "tokens saved" '
                    "FROM usage_events WHERE $__timeFilter(created_at) GROUP BY 1 ORDER BY 1"
                )
            ],
            "short",
        ),
        w=8,
    )
    lay.panel(
        timeseries(
            "Cost saved and spent (USD)",
            [
                sql(
                    'SELECT $__timeGroupAlias(created_at, $__interval), coalesce(sum(cost_saved_usd), 0) AS "saved", '
                    'coalesce(sum(cost_usd), 0) AS "spent" FROM usage_events WHERE $__timeFilter(created_at) '
                    "GROUP BY 1 ORDER BY 1"
                )
            ],
            "currencyUSD",
        ),
        w=8,
    )

    lay.row("Latency per stage")
    lay.panel(
        timeseries(
            "Gateway: time to first byte by cache result",
            percentiles("llmcache_gateway_request_duration_seconds", ", cache", "{{cache}}"),
            "s",
        )
    )
    lay.panel(
        timeseries(
            "Cache lookup stages",
            percentiles("llmcache_cache_lookup_stage_seconds", ", stage", "{{stage}}"),
            "s",
            "exact (Redis), embedding (as the cache worker waits for it, queue included),"
            " vector_search (pgvector), verifier (hit verification, per candidate, once the verifier ships), total.",
        )
    )
    lay.panel(
        timeseries(
            "Embedder: batch time and queue wait",
            [
                *percentiles("llmcache_embedder_batch_duration_seconds", "", "batch"),
                *percentiles("llmcache_embedder_queue_wait_seconds", "", "batcher wait"),
            ],
            "s",
        )
    )
    lay.panel(
        timeseries(
            "Upstream: whole call and first chunk",
            [
                *percentiles("llmcache_upstream_request_duration_seconds", "", "call"),
                *percentiles("llmcache_upstream_time_to_first_chunk_seconds", "", "first chunk"),
            ],
            "s",
        )
    )
    lay.panel(
        timeseries(
            "Worker message handling (p99 by queue)",
            [
                prom(
                    "histogram_quantile(0.99, sum by (le, queue) "
                    f"(rate(llmcache_worker_message_handling_seconds_bucket[{RATE}])))",
                    "{{queue}}",
                )
            ],
            "s",
            "Delivery to ack, per queue.",
        ),
        w=24,
    )

    lay.row("Queues (RabbitMQ exporter)")
    lay.panel(
        timeseries(
            "Messages ready (backlog)",
            [prom(f'sum by (queue) (rabbitmq_detailed_queue_messages_ready{{queue=~"{QUEUES}"}})', "{{queue}}")],
            "short",
            "What KEDA scales the workers on.",
        ),
        w=8,
    )
    lay.panel(
        timeseries(
            "Messages unacked (in flight)",
            [prom(f'sum by (queue) (rabbitmq_detailed_queue_messages_unacked{{queue=~"{QUEUES}"}})', "{{queue}}")],
            "short",
            "Bounded by prefetch x consumers.",
        ),
        w=8,
    )
    lay.panel(
        timeseries(
            "Consumers",
            [prom(f'sum by (queue) (rabbitmq_detailed_queue_consumers{{queue=~"{QUEUES}"}})', "{{queue}}")],
            "short",
            "One per worker replica and queue.",
        ),
        w=8,
    )

    lay.row("Errors")
    lay.panel(
        timeseries(
            "Gateway answers by status class",
            [prom(f"sum by (status) (rate(llmcache_gateway_requests_total[{RATE}]))", "{{status}}")],
            "reqps",
        ),
        w=8,
    )
    lay.panel(
        timeseries(
            "Upstream calls by outcome",
            [prom(f"sum by (outcome) (rate(llmcache_upstream_requests_total[{RATE}]))", "{{outcome}}")],
            "reqps",
        ),
        w=8,
    )
    lay.panel(
        timeseries(
            "Dependency failures (failing open)",
            [
                prom(
                    f"sum by (dependency, operation) (rate(llmcache_cache_dependency_failures_total[{RATE}]))",
                    "{{dependency}} {{operation}}",
                )
            ],
            "ops",
        ),
        w=8,
    )
    lay.panel(
        timeseries(
            "Worker messages not acked",
            [
                prom(
                    "sum by (service, queue, outcome) "
                    f'(rate(llmcache_worker_messages_total{{outcome!="acked"}}[{RATE}]))',
                    "{{service}} {{queue}} {{outcome}}",
                )
            ],
            "ops",
        ),
        w=8,
    )
    lay.panel(
        timeseries(
            "Refused by limits, Redis skipped",
            [
                prom(f"sum by (limit) (rate(llmcache_gateway_rate_limited_total[{RATE}]))", "429 {{limit}}"),
                prom(
                    f"sum by (operation) (rate(llmcache_gateway_limits_unavailable_total[{RATE}]))",
                    "limits unavailable {{operation}}",
                ),
            ],
            "reqps",
        ),
        w=8,
    )
    lay.panel(
        timeseries(
            "Embedder, usage log and event errors",
            [
                prom(
                    f'sum by (outcome) (rate(llmcache_embedder_requests_total{{outcome!="ok"}}[{RATE}]))',
                    "embedder {{outcome}}",
                ),
                prom(f"sum(rate(llmcache_usage_write_failures_total[{RATE}]))", "usage write failures"),
                prom(
                    f"sum by (event) (rate(llmcache_llm_worker_event_publish_failures_total[{RATE}]))",
                    "publish failed {{event}}",
                ),
            ],
            "ops",
        ),
        w=8,
    )

    lay.row("Bypass and refused-hit reasons")
    lay.panel(
        timeseries(
            "Bypasses by reason",
            [
                prom(
                    f'sum by (reason) (rate(llmcache_cache_lookups_total{{result="bypass"}}[{RATE}]))',
                    "{{reason}}",
                )
            ],
            "ops",
        ),
        w=8,
    )
    lay.panel(
        timeseries(
            "Semantic candidates refused, by reason",
            [prom(f"sum by (reason) (rate(llmcache_cache_refused_candidates_total[{RATE}]))", "{{reason}}")],
            "ops",
            "Above the similarity threshold but refused by a further check.",
        ),
        w=8,
    )
    lay.panel(
        timeseries(
            "Answers not stored, by reason",
            [prom(f"sum by (reason) (rate(llmcache_llm_worker_not_stored_total[{RATE}]))", "{{reason}}")],
            "ops",
        ),
        w=8,
    )

    lay.row("Traces (Jaeger)")
    lay.panel(
        traces(
            "Trace of one request (paste its X-Request-Id above)",
            'llmcache.request_id="$request_id"',
            "Every answer carries X-Request-Id; its trace shows the request's time in each service and stage: "
            "cache.lookup, embed, vector.search, verify, upstream.call, cache.store, usage.write.",
        ),
        w=12,
    )
    lay.panel(
        traces(
            "Recent traces",
            "",
            "The latest requests through the gateway (OTEL_TRACES_SAMPLER_ARG sets the share traced).",
        ),
        w=12,
    )

    return {
        "uid": "llm-cache-proxy",
        "title": "LLM Cache Proxy",
        "tags": ["llm-cache-proxy"],
        "timezone": "",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [{"type": "textbox", "name": "request_id", "label": "X-Request-Id", "query": "", "current": {}}]
        },
        "annotations": {"list": []},
        "panels": lay.panels,
    }


def render() -> str:
    return json.dumps(build(), indent=2) + "\n"


if __name__ == "__main__":
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(render())
    print(f"wrote {OUT}")
