"""Routes: the routes file, the env vars' one upstream, and which upstream a model goes to."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from services.llm_worker.routing import (
    ANTHROPIC_BASE_URL,
    MOCK_LABEL,
    NO_KEY,
    OPENAI_BASE_URL,
    RoutesFileError,
    parse_routes,
    route,
    single_upstream,
)
from services.llm_worker.settings import Settings
from services.llm_worker.upstreams import Upstreams

ROUTES = """
upstreams:
  - name: anthropic
    provider: anthropic
    api_key_env: ANTHROPIC_API_KEY
    models: ["claude-*"]
  - name: openai
    provider: openai
    api_key_env: OPENAI_API_KEY
    models: ["gpt-*", "o*", "text-embedding-*"]
  - name: local
    provider: openai
    base_url: http://127.0.0.1:11434/v1/
    models: ["llama*"]
"""
ENV = {"ANTHROPIC_API_KEY": "sk-ant-1234567890", "OPENAI_API_KEY": "sk-openai-1234567890"}

# A production broker URL (the default guest:guest is refused in production).
BROKER = "amqp://llmcache:a-long-broker-password@rabbitmq:5672/"


def settings_for(tmp_path: Path, text: str = ROUTES) -> Settings:
    path = tmp_path / "upstreams.yaml"
    path.write_text(text)
    return Settings(upstreams_file=str(path))


def test_a_routes_file_names_upstreams_in_order_with_their_keys(tmp_path: Path) -> None:
    anthropic, openai, local = settings_for(tmp_path).upstreams(ENV)
    assert (anthropic.provider, anthropic.base_url, anthropic.api_key) == (
        "anthropic",
        ANTHROPIC_BASE_URL,
        ENV["ANTHROPIC_API_KEY"],
    )
    assert (openai.provider, openai.base_url, openai.api_key) == ("openai", OPENAI_BASE_URL, ENV["OPENAI_API_KEY"])
    assert (local.base_url, local.api_key) == ("http://127.0.0.1:11434/v1", NO_KEY)
    upstreams = [anthropic, openai, local]
    for model, name in [
        ("claude-sonnet-4-5", "anthropic"),
        ("gpt-4o-mini", "openai"),
        ("o3-mini", "openai"),
        ("text-embedding-3-small", "openai"),
        ("llama3.1:8b", "local"),
    ]:
        found = route(model, upstreams)
        assert found is not None and found.name == name, model
    assert route("mistral-large", upstreams) is None
    assert route("Claude-3", upstreams) is None  # patterns are case-sensitive, as model names are


def test_the_first_matching_upstream_wins(tmp_path: Path) -> None:
    text = ROUTES.replace('models: ["llama*"]', 'models: ["*"]')
    upstreams = settings_for(tmp_path, text).upstreams(ENV)
    assert route("gpt-4o", upstreams).name == "openai"  # type: ignore[union-attr]
    assert route("mistral-large", upstreams).name == "local"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "env", "says"),
    [
        (ROUTES, {}, "ANTHROPIC_API_KEY, which is not set"),
        ("upstreams: []", ENV, "upstreams"),
        ("upstreams:\n  - {name: a, provider: cohere, models: ['*']}", ENV, "upstreams.0.provider"),
        ("upstreams:\n  - {name: a, provider: openai, models: []}", ENV, "upstreams.0.models"),
        ("upstreams:\n  - {name: a, provider: openai, models: ['*'], key: x}", ENV, "upstreams.0.key"),
        (
            "upstreams:\n  - {name: a, provider: openai, models: ['*']}\n"
            "  - {name: a, provider: openai, models: ['*']}",
            ENV,
            "must differ",
        ),
        ("upstreams: [", ENV, "is not YAML"),
    ],
)
def test_a_bad_routes_file_is_refused_saying_why(tmp_path: Path, text: str, env: dict[str, str], says: str) -> None:
    with pytest.raises(RoutesFileError) as refused:
        settings_for(tmp_path, text).upstreams(env)
    assert says in str(refused.value)


@pytest.mark.parametrize(
    "entry",
    [
        {"name": "openai", "provider": "openai", "models": ["gpt-*"]},
        {"name": "claude", "provider": "anthropic", "models": ["claude-*"]},
        {"name": "openai", "provider": "openai", "base_url": "https://api.openai.com/v1/", "models": ["*"]},
    ],
)
def test_a_providers_public_api_without_a_key_variable_is_refused_at_startup(entry: dict[str, Any]) -> None:
    with pytest.raises(RoutesFileError) as refused:
        parse_routes({"upstreams": [entry]}, ENV)  # it would start, and fail every call with a 502
    assert entry["name"] in str(refused.value) and "api_key_env" in str(refused.value)


def test_the_public_openai_api_as_the_one_upstream_needs_a_key() -> None:
    with pytest.raises(ValueError, match="UPSTREAM_API_KEY"):
        single_upstream("https://api.openai.com/v1", "", "")
    assert single_upstream("https://api.openai.com/v1", "sk-real-key-123456", "")[0].api_key == "sk-real-key-123456"


def test_an_upstreams_key_is_not_in_its_repr() -> None:
    (openai,) = single_upstream("", "sk-real-key-123456", "")
    assert "sk-real-key-123456" not in repr(openai) and "sk-real-key-123456" not in str(openai)


def test_a_missing_routes_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RoutesFileError, match="UPSTREAMS_FILE"):
        Settings(upstreams_file=str(tmp_path / "nope.yaml")).upstreams({})


def test_without_a_routes_file_the_env_vars_name_one_upstream() -> None:
    (local,) = Settings(upstream_base_url="http://vllm:8000/v1", upstream_api_key="").upstreams()
    assert (local.provider, local.base_url, local.api_key, local.models, local.label) == (
        "openai",
        "http://vllm:8000/v1",
        NO_KEY,
        ("*",),
        None,
    )
    (openai,) = Settings(upstream_api_key="sk-real-key-123456").upstreams()
    assert (openai.base_url, openai.api_key, openai.models) == (OPENAI_BASE_URL, "sk-real-key-123456", ("*",))


def test_without_any_upstream_the_mock_serves_both_apis() -> None:
    anthropic, openai = single_upstream("", "", "http://127.0.0.1:8100/v1")
    assert (anthropic.provider, anthropic.base_url, anthropic.models) == (
        "anthropic",
        "http://127.0.0.1:8100",
        ("claude-*",),
    )
    assert (openai.provider, openai.base_url, openai.models) == ("openai", "http://127.0.0.1:8100/v1", ("*",))
    assert anthropic.is_mock and openai.label == MOCK_LABEL


def test_routes_to_the_mock_are_labelled_mock_and_refused_in_production(tmp_path: Path) -> None:
    text = "upstreams:\n  - {name: m, provider: anthropic, base_url: 'http://127.0.0.1:8100', models: ['*']}"
    (mock,) = settings_for(tmp_path, text).upstreams({})
    assert mock.is_mock
    path = tmp_path / "prod.yaml"
    path.write_text(text)
    with pytest.raises(RoutesFileError, match="mock"):
        Settings(upstreams_file=str(path), environment="production", rabbitmq_url=BROKER).upstreams({})
    local = {"name": "x", "provider": "openai", "base_url": "http://vllm:8000/v1", "models": ["*"]}
    assert parse_routes({"upstreams": [local]}, {})[0].label is None


async def test_an_unrouted_model_is_openais_404() -> None:
    upstreams = Upstreams.from_configs(single_upstream("http://vllm:8000/v1", "", ""), timeout=1, max_retries=0)
    only = Upstreams.from_configs(
        [c for c in single_upstream("", "", "http://127.0.0.1:8100/v1") if c.provider == "anthropic"],
        timeout=1,
        max_retries=0,
    )
    try:
        assert upstreams.for_model("anything").protocol == "openai"
        with pytest.raises(Exception) as missing:
            only.for_model("gpt-4o")
        error = missing.value.error  # type: ignore[attr-defined]
        assert (error.status, error.code, error.param) == (404, "model_not_found", "model")
        assert only.for_model("claude-haiku-4-5").protocol == "anthropic"
    finally:
        await upstreams.close()
        await only.close()


def test_placeholder_keys_are_refused_in_production(tmp_path: Path) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(ROUTES)
    production = Settings(upstreams_file=str(path), environment="production", rabbitmq_url=BROKER)
    assert len(production.upstreams(ENV)) == 3
    with pytest.raises(ValueError, match="ANTHROPIC_API_KEY"):
        production.upstreams({**ENV, "ANTHROPIC_API_KEY": "changeme"})
