"""Every metric the dashboard and the alert rules use is one the running services export.

Scrapes /metrics of the gateway and of every worker in the integration stack (after one chat
request, so labelled series exist) and compares. rabbitmq_* series come from RabbitMQ's own
exporter (rabbitmq_prometheus plugin) and `up` from Prometheus: they are not checked here.
The dashboard's SQL panels run against the stack's PostgreSQL (usage log).
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import psycopg
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import wait_until
from tests.deploy.conftest import DEPLOY
from tests.integration.stack import Stack

pytestmark = pytest.mark.integration

DASHBOARD = DEPLOY / "grafana" / "dashboards" / "llm-cache-proxy.json"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
NOT_OURS = ("rabbitmq_",)
PROMETHEUS_OWN = {"up"}
KEYWORDS = {"and", "or", "unless", "offset", "bool", "inf", "nan", "group_left", "group_right", "on", "ignoring"}
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created")}


def promql_expressions() -> dict[str, str]:
    """Every PromQL expression of the dashboard and the rules, by where it is."""
    found: dict[str, str] = {}
    dashboard = json.loads(DASHBOARD.read_text())
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            if "expr" in target:
                found[f"dashboard {panel['title']!r} {target['refId']}"] = target["expr"]
    for group in yaml.safe_load(ALERTS.read_text())["groups"]:
        for rule in group["rules"]:
            found[f"rule {rule.get('alert') or rule.get('record')}"] = rule["expr"]
    return found


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression (strings, label matchers and grouping clauses removed)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    names = set()
    for match in re.finditer(r"(?<![\w:.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", text):
        name = match.group(1)
        if name in KEYWORDS or re.fullmatch(r"[0-9.e]+", name):
            continue
        names.add(name)
    return names


def recording_rules() -> set[str]:
    return {r["record"] for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"] if "record" in r}


def exported(text: str) -> set[str]:
    """Names a Prometheus server would store from one scrape, unobserved labelled metrics included."""
    names = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ()))
        names.update(sample.name for sample in family.samples)
    return names


def test_metric_name_parser() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le, stage) (rate(llmcache_x_bucket{stage="a{b}"}[5m])))'
        ' / ignoring(result) group_left llmcache:rec:ratio > 0.5 and up{job="x"} == 0'
    )
    assert metric_names(expr) == {"llmcache_x_bucket", "llmcache:rec:ratio", "up"}


def test_dashboard_and_alerts_use_only_exported_metrics(stack: Stack) -> None:
    response = httpx.post(
        f"{stack.base_url}/v1/chat/completions",
        headers=stack.auth,
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "deploy checks: metrics"}]},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    endpoints = {"gateway": f"{stack.base_url}/metrics"}
    endpoints |= {name: f"http://127.0.0.1:{port}/metrics" for name, port in stack.metrics_ports.items()}
    available: set[str] = set()
    for service, url in endpoints.items():
        scrape = httpx.get(url, timeout=10)
        assert scrape.status_code == 200, f"{service}: {url} answered {scrape.status_code}"
        available |= exported(scrape.text)
    known = available | recording_rules() | PROMETHEUS_OWN
    missing: dict[str, set[str]] = {}
    referenced: set[str] = set()
    for where, expr in promql_expressions().items():
        names = metric_names(expr)
        assert names, f"{where}: no metric found in {expr!r}"
        referenced |= names
        unknown = {n for n in names - known if not n.startswith(NOT_OURS)}
        if unknown:
            missing[where] = unknown
    assert not missing, f"not exported by any service: {missing}"
    assert len({n for n in referenced if n.startswith("llmcache_")}) >= 15


def sql_targets() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [(p["title"], t["rawSql"]) for p in dashboard["panels"] for t in p.get("targets", []) if "rawSql" in t]


def grafana_macros(query: str) -> str:
    """Expand the Grafana PostgreSQL macros the dashboard uses, as Grafana would for the last day."""
    query = re.sub(
        r"\$__timeGroupAlias\((\w+), \$__interval\)",
        r"to_timestamp(floor(extract(epoch from \1) / 60) * 60) AS time",
        query,
    )
    last_day = r"\1 BETWEEN now() - interval '1 day' AND now() + interval '1 hour'"
    query = re.sub(r"\$__timeFilter\((\w+)\)", last_day, query)
    assert "$__" not in query, f"a Grafana macro this test doesn't expand: {query}"
    return query


def test_dashboard_sql_runs_on_the_usage_log(stack: Stack) -> None:
    """The savings panels' SQL runs against the usage table the stats consumer writes."""

    def logged() -> Any:
        with psycopg.connect(stack.env["DATABASE_URL"]) as conn:
            row = conn.execute("SELECT count(*) FROM usage_events").fetchone()
            return row and row[0]

    wait_until(logged, timeout=15)
    with psycopg.connect(stack.env["DATABASE_URL"]) as conn:
        for title, query in sql_targets():
            rows = conn.execute(grafana_macros(query)).fetchall()  # type: ignore[arg-type]
            assert rows, title
