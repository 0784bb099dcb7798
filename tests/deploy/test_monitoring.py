"""Prometheus config and alert rules (promtool), and the Grafana provisioning and dashboard."""

from __future__ import annotations

import json
import runpy
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy.conftest import DEPLOY

PROMETHEUS = DEPLOY / "prometheus"
GRAFANA = DEPLOY / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "llm-cache-proxy.json"


def promtool(*args: str, cwd: Path = PROMETHEUS) -> subprocess.CompletedProcess[str]:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool not found (Debian: apt-get install prometheus): alert rules not checked")
    return subprocess.run([path, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def test_alert_rules_are_valid() -> None:
    result = promtool("check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rules_fire_when_they_should() -> None:
    result = promtool("test", "rules", "alerts.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_alerts_cover_what_the_issue_asks() -> None:
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    alerts = {r["alert"] for group in rules["groups"] for r in group["rules"] if "alert" in r}
    for needed in ("HighErrorRate", "HitRateDrop", "QueueBacklog", "UpstreamFailures", "EmbedderSlow"):
        assert f"LLMCache{needed}" in alerts


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus-kubernetes.yml"])
def test_prometheus_configs_are_valid(tmp_path: Path, config: str) -> None:
    document = yaml.safe_load((PROMETHEUS / config).read_text())
    document["rule_files"] = [str(PROMETHEUS / "alerts.yml")]  # compose mounts it elsewhere
    (tmp_path / config).write_text(yaml.safe_dump(document))
    result = promtool("check", "config", config, cwd=tmp_path)
    output = result.stdout + result.stderr
    if "field kubernetes_sd_configs not found" in output:
        pytest.skip("this promtool is built without Kubernetes service discovery (Debian's package)")
    assert result.returncode == 0, output


def test_dashboard_is_current_with_its_generator() -> None:
    generator = runpy.run_path(str(GRAFANA / "build_dashboard.py"))
    assert DASHBOARD.read_text() == generator["render"](), "run: python deploy/grafana/build_dashboard.py"


def test_dashboard_uses_the_provisioned_datasources() -> None:
    provisioned = yaml.safe_load((GRAFANA / "provisioning/datasources/datasources.yml").read_text())
    uids = {d["uid"]: d["type"] for d in provisioned["datasources"]}
    dashboard = json.loads(DASHBOARD.read_text())
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    for panel in panels:
        for target in panel["targets"]:
            source = target["datasource"]
            assert uids.get(source["uid"]) == source["type"], f"{panel['title']}: {source}"
    providers = yaml.safe_load((GRAFANA / "provisioning/dashboards/dashboards.yml").read_text())
    assert providers["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    titles = " ".join(p["title"].lower() for p in dashboard["panels"])
    for needed in ("cache result", "hit rate", "tokens saved", "cost saved", "latency", "queue", "errors", "bypass"):
        assert needed in titles, f"the dashboard has no panel or row about {needed}"
    assert "refused" in titles
