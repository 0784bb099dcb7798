"""The Kubernetes manifests render (kustomize), validate against the Kubernetes and KEDA schemas,
and agree with the services: queue names, ports, settings and the shutdown drain."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
from pydantic_settings import BaseSettings

from services.cache_worker.settings import Settings as CacheWorkerSettings
from services.embedder.settings import Settings as EmbedderSettings
from services.gateway.settings import Settings as GatewaySettings
from services.llm_worker.settings import Settings as LlmWorkerSettings
from services.mock_upstream.settings import Settings as MockUpstreamSettings
from services.stats_consumer.settings import Settings as StatsConsumerSettings
from services.tenants.settings import Settings as TenantsSettings
from shared.settings import BaseServiceSettings
from shared.topology import Topology
from tests.deploy.conftest import SCHEMAS, TARGETS

KUBERNETES_VERSION = "1.33.0"
SETTINGS: dict[str, type[BaseServiceSettings]] = {
    "gateway": GatewaySettings,
    "cache_worker": CacheWorkerSettings,
    "embedder": EmbedderSettings,
    "llm_worker": LlmWorkerSettings,
    "stats_consumer": StatsConsumerSettings,
    "tenants": TenantsSettings,
}
# The queues each worker consumes (services/*/main.py) and so must scale on.
SCALED_QUEUES = {
    "cache-worker": {"cache_lookup", "cache_store"},
    "embedder": {"embed_rpc"},
    "llm-worker": {"llm_request"},
    "stats-consumer": {"usage_events", "stats_query"},
    "tenants": {"tenants_rpc"},
}
WORKER_PORTS = {"cache_worker": 9101, "embedder": 9102, "llm_worker": 9103, "stats_consumer": 9104, "tenants": 9105}
# Read by KEDA (the scaler's hostFromEnv), not by the services; SERVICE and HOME are the image's.
NOT_SERVICE_SETTINGS = {"RABBITMQ_MANAGEMENT_URL"}


def of_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def container_env(deployment: dict[str, Any]) -> dict[str, str]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


@pytest.mark.parametrize("target", TARGETS)
def test_every_object_validates_against_its_schema(rendered: dict[str, list[dict[str, Any]]], target: str) -> None:
    keda = json.loads((SCHEMAS / "keda-scaledobject-v1alpha1.json").read_text())
    jsonschema.Draft202012Validator.check_schema(keda)
    for obj in rendered[target]:
        where = f"{target}: {obj['kind']}/{obj['metadata']['name']}"
        if obj["apiVersion"].startswith("keda.sh/"):
            errors = list(jsonschema.Draft202012Validator(keda).iter_errors(obj))
            assert not errors, f"{where}: " + "; ".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)
        else:
            try:
                kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(f"{where}: {exc.message} at {list(exc.path)}")


def test_keda_schema_rejects_what_it_should(rendered: dict[str, list[dict[str, Any]]]) -> None:
    """The hand-written KEDA schema is no rubber stamp: a typo and a missing field fail."""
    validator = jsonschema.Draft202012Validator(json.loads((SCHEMAS / "keda-scaledobject-v1alpha1.json").read_text()))
    good = of_kind(rendered["base"], "ScaledObject")["llm-worker"]
    typo = json.loads(json.dumps(good))
    typo["spec"]["maxReplicas"] = 3
    metadata = json.loads(json.dumps(good))
    metadata["spec"]["triggers"][0]["metadata"]["queueLength"] = "20"
    missing = json.loads(json.dumps(good))
    del missing["spec"]["triggers"][0]["metadata"]["queueName"]
    for bad in (typo, metadata, missing):
        assert not validator.is_valid(bad)


@pytest.mark.parametrize("target", TARGETS)
def test_every_worker_scales_on_its_own_queues(rendered: dict[str, list[dict[str, Any]]], target: str) -> None:
    topology = Topology("llmcache")
    config = of_kind(rendered[target], "ConfigMap")["llmcache-config"]["data"]
    assert config["BROKER_PREFIX"] == topology.prefix, "the ScaledObjects' queue names assume this prefix"
    deployments = of_kind(rendered[target], "Deployment")
    scaled = of_kind(rendered[target], "ScaledObject")
    assert set(scaled) == set(SCALED_QUEUES)
    for name, queues in SCALED_QUEUES.items():
        spec = scaled[name]["spec"]
        assert spec["scaleTargetRef"]["name"] == name and name in deployments
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
        triggers = [t for t in spec["triggers"] if t["type"] == "rabbitmq"]
        assert {t["metadata"]["queueName"] for t in triggers} == {getattr(topology, q) for q in queues}
        for trigger in triggers:
            assert trigger["metadata"]["mode"] == "QueueLength" and float(trigger["metadata"]["value"]) > 0
            # KEDA resolves hostFromEnv from the scale target's container environment.
            assert trigger["metadata"]["hostFromEnv"] in secret_keys(rendered[target])
        assert "replicas" not in deployments[name]["spec"], "KEDA owns the replica count"
    hpa = of_kind(rendered[target], "HorizontalPodAutoscaler")
    assert set(hpa) == {"gateway"}
    assert hpa["gateway"]["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert "replicas" not in deployments["gateway"]["spec"], "the HPA owns the replica count"


def secret_keys(objects: list[dict[str, Any]]) -> set[str]:
    secret = next(o for o in objects if o["kind"] == "Secret" and o["metadata"]["name"].startswith("llmcache-secrets"))
    return set(secret.get("stringData", {})) | set(secret.get("data", {}))


@pytest.mark.parametrize("target", TARGETS)
def test_deployments_have_probes_resources_budgets_and_drain_time(
    rendered: dict[str, list[dict[str, Any]]], target: str
) -> None:
    deployments = of_kind(rendered[target], "Deployment")
    budgets = of_kind(rendered[target], "PodDisruptionBudget")
    expected = {"gateway", *SCALED_QUEUES}
    assert expected <= set(deployments)
    assert ("mock-upstream" in deployments) == (target == "overlays/dev"), "the mock upstream is for dev only"
    for name in expected:
        pod = deployments[name]["spec"]["template"]["spec"]
        container = pod["containers"][0]
        env = container_env(deployments[name])
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            assert probe in container, f"{name} has no {probe}"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert {"cpu", "memory"} <= set(container["resources"]["requests"]) & set(container["resources"]["limits"])
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert name in budgets
        # SIGTERM comes after preStop; the worker then drains for SHUTDOWN_GRACE_SECONDS and closes.
        pre_stop = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
        drain = float(env["SHUTDOWN_GRACE_SECONDS"])
        assert pod["terminationGracePeriodSeconds"] >= pre_stop + drain + 5, name
        service = env["SERVICE"]
        assert service in SETTINGS
        if service in WORKER_PORTS:
            assert int(env["METRICS_PORT"]) == WORKER_PORTS[service]
            assert container["ports"][0]["containerPort"] == WORKER_PORTS[service]
        annotations = deployments[name]["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == str(container["ports"][0]["containerPort"])
    if target == "overlays/prod":
        assert of_kind(rendered[target], "Ingress")["gateway"]["spec"]["rules"][0]["http"]["paths"]


def test_the_dev_overlay_ships_no_known_keys_and_no_ingress(rendered: dict[str, list[dict[str, Any]]]) -> None:
    """Keys written in the repository are everyone's: the dev overlay sets none, and is reached by port-forward."""
    objects = rendered["overlays/dev"]
    assert not of_kind(objects, "Ingress")
    secret = next(o for o in objects if o["kind"] == "Secret" and o["metadata"]["name"].startswith("llmcache-secrets"))
    values = secret.get("stringData") or {}
    if "data" in secret:
        import base64

        values = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert not values.get("ADMIN_API_KEY") and not values.get("DEV_API_KEY")


def known_settings() -> set[str]:
    names: set[str] = set()
    settings_classes: list[type[BaseSettings]] = [*SETTINGS.values(), MockUpstreamSettings]
    for settings in settings_classes:
        prefix = settings.model_config.get("env_prefix", "") or ""
        for field_name, field in settings.model_fields.items():
            names.add(f"{prefix}{field_name}".upper())
            alias = field.validation_alias
            if alias is not None:
                names.update(str(choice).upper() for choice in getattr(alias, "choices", [alias]))
    return names


@pytest.mark.parametrize("target", TARGETS)
def test_config_and_secret_carry_only_real_settings(rendered: dict[str, list[dict[str, Any]]], target: str) -> None:
    known = known_settings() | NOT_SERVICE_SETTINGS
    config = of_kind(rendered[target], "ConfigMap")["llmcache-config"]["data"]
    unknown = (set(config) | secret_keys(rendered[target])) - known
    assert not unknown, f"not a setting of any service (typo?): {sorted(unknown)}"
    for deployment in of_kind(rendered[target], "Deployment").values():
        env = container_env(deployment)
        if "SERVICE" in env:  # ours, not the in-cluster RabbitMQ, Redis or PostgreSQL
            assert not set(env) - known - {"HOME", "SERVICE"}, deployment["metadata"]["name"]


def test_dev_settings_load_in_every_service(
    rendered: dict[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each service's Settings accepts the environment its dev Deployment gives it."""
    objects = rendered["overlays/dev"]
    config = of_kind(objects, "ConfigMap")["llmcache-config"]["data"]
    secret = next(o for o in objects if o["kind"] == "Secret")
    secret_env = secret.get("stringData") or {}
    if "data" in secret:
        import base64

        secret_env = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    for deployment in of_kind(objects, "Deployment").values():
        env = container_env(deployment)
        service = env.get("SERVICE")
        if service not in SETTINGS:
            continue
        with monkeypatch.context() as patch:
            for key, value in {**config, **secret_env, **env}.items():
                patch.setenv(key, value)
            settings = SETTINGS[service]()
        assert settings.broker_prefix == "llmcache"
        assert settings.environment == "development"
