"""The embedder's settings: defaults, the API key's two names, and refusing an unusable OpenAI set-up."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.embedder.providers import (
    LocalEmbeddingProvider,
    OnnxEmbeddingProvider,
    OpenAIEmbeddingProvider,
    make_provider,
)
from services.embedder.settings import Settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "EMBEDDING_PROVIDER",
        "EMBEDDER_RUNTIME",
        "EMBEDDING_API_KEY",
        "OPENAI_API_KEY",
        "EMBEDDING_BASE_URL",
        "ENVIRONMENT",
    ):
        monkeypatch.delenv(name, raising=False)


def test_defaults_are_the_local_model_on_onnx_runtime() -> None:
    settings = Settings()

    assert settings.embedding_provider == "local"
    assert settings.embedder_runtime == "onnx"
    assert settings.metrics_port == 9102
    assert settings.batch_max_size == 64
    assert isinstance(make_provider(settings), OnnxEmbeddingProvider)


def test_the_local_model_can_still_run_on_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMBEDDER_RUNTIME", "torch")

    assert isinstance(make_provider(Settings()), LocalEmbeddingProvider)


def test_the_api_key_falls_back_to_openai_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMBEDDING_PROVIDER", "openai")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-openai")
    assert Settings().embedding_api_key.get_secret_value() == "sk-from-openai"

    monkeypatch.setenv("EMBEDDING_API_KEY", "sk-embedding")
    settings = Settings()
    assert settings.embedding_api_key.get_secret_value() == "sk-embedding"
    assert "sk-embedding" not in repr(settings)
    assert isinstance(make_provider(settings), OpenAIEmbeddingProvider)


def test_openai_without_a_key_is_refused_unless_self_hosted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMBEDDING_PROVIDER", "openai")
    with pytest.raises(ValidationError, match="EMBEDDING_API_KEY"):
        Settings()

    monkeypatch.setenv("EMBEDDING_BASE_URL", "http://127.0.0.1:8080/v1")
    assert Settings().embedding_base_url == "http://127.0.0.1:8080/v1"


def test_a_placeholder_key_is_refused_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMBEDDING_PROVIDER", "openai")
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("EMBEDDING_API_KEY", "changeme")
    with pytest.raises(ValidationError, match="placeholder"):
        Settings()
