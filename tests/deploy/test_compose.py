"""deploy/docker-compose.yml follows the compose specification and brings the whole stack."""

from __future__ import annotations

import importlib.resources
import json
from pathlib import Path

import jsonschema
import yaml

from tests.deploy.conftest import DEPLOY

COMPOSE = DEPLOY / "docker-compose.yml"


def compose_spec() -> dict:
    """The compose specification's JSON schema, as the check-jsonschema package ships it."""
    path = importlib.resources.files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json")
    return json.loads(path.read_text())


def test_compose_file_follows_the_compose_specification() -> None:
    document = yaml.safe_load(COMPOSE.read_text())
    schema = compose_spec()
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


def test_compose_schema_rejects_a_typo() -> None:
    document = yaml.safe_load(COMPOSE.read_text())
    document["services"]["gateway"]["port"] = ["8000:8000"]
    schema = compose_spec()
    assert not jsonschema.validators.validator_for(schema)(schema).is_valid(document)


def test_compose_runs_the_whole_stack_with_monitoring() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    expected = {"gateway", "cache_worker", "embedder", "llm_worker", "stats_consumer", "tenants", "mock_upstream"}
    assert expected | {"rabbitmq", "redis", "postgres", "prometheus", "grafana"} <= set(services)
    assert services["rabbitmq"]["image"].endswith("-management")
    assert services["postgres"]["image"].startswith("pgvector/pgvector")
    for name in ("prometheus", "grafana"):
        for volume in services[name]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (DEPLOY / source).exists(), f"{name} mounts {source}, which doesn't exist"
    # Workers are stopped no sooner than they can drain.
    for name in expected - {"mock_upstream", "gateway"}:
        env = services[name]["environment"]
        grace = float(env["SHUTDOWN_GRACE_SECONDS"])
        assert float(services[name]["stop_grace_period"].rstrip("s")) >= grace + 5, name


def test_compose_traces_every_service_into_jaeger_and_grafana() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    assert services["jaeger"]["image"].startswith("jaegertracing/jaeger:2.")
    for name in ("gateway", "cache_worker", "embedder", "llm_worker", "stats_consumer", "tenants"):
        assert services[name]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4318", name
    sources = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/datasources.yml").read_text())["datasources"]
    assert {"type": "jaeger", "url": "http://jaeger:16686"}.items() <= next(
        source for source in sources if source["type"] == "jaeger"
    ).items()


def test_the_images_run_as_non_root_with_a_healthcheck() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    stages = dockerfile.split("\nFROM ")[1:]  # [0] is the header comment
    dashboard, *stages = stages  # the dashboard's build stage: only its dist/ reaches an image
    assert dashboard.startswith("node:") and "npm ci" in dashboard
    assert "COPY --from=dashboard /build/dist services/dashboard/dist" in stages[0]
    assert len(stages) == 2, "two targets: service and embedder"
    for stage in stages:
        assert "USER 10001" in stage and "HEALTHCHECK" in stage
    service, embedder = stages
    assert "torch" not in service.replace("no torch", "")
    assert "download.pytorch.org/whl/cpu" in embedder
    assert Path(DEPLOY / "healthcheck.py").exists()


def test_compose_publishes_ports_on_loopback_only_and_sets_every_credential() -> None:
    """Anyone who reached RabbitMQ, Redis or PostgreSQL could write any tenant's cache: none of them, nor any
    other port, is published beyond 127.0.0.1, and each has a password from the environment (no default)."""
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"
    text = COMPOSE.read_text()
    for variable in ("RABBITMQ_PASSWORD", "REDIS_PASSWORD", "POSTGRES_PASSWORD", "GRAFANA_ADMIN_PASSWORD"):
        assert f"${{{variable}:?" in text, f"{variable} must be required (no default)"
    assert "guest" not in text and "postgres:postgres@" not in text
    assert "--requirepass" in str(services["redis"]["command"])
    common = services["cache_worker"]["environment"]
    assert "${RABBITMQ_PASSWORD" in common["RABBITMQ_URL"] and "${REDIS_PASSWORD" in common["REDIS_URL"]
    assert "${POSTGRES_PASSWORD" in common["DATABASE_URL"]
    example = (DEPLOY / "compose.env.example").read_text()
    for variable in ("RABBITMQ_PASSWORD", "REDIS_PASSWORD", "POSTGRES_PASSWORD", "GRAFANA_ADMIN_PASSWORD"):
        assert f"{variable}=" in example
