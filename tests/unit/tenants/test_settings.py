"""Settings of the tenants service: DEV_API_KEY is a secret and may not be a placeholder in production."""

from __future__ import annotations

import pydantic
import pytest

from services.tenants.settings import Settings


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@127.0.0.1/db")
    monkeypatch.delenv("DEV_API_KEY", raising=False)
    monkeypatch.delenv("ENVIRONMENT", raising=False)


def test_the_dev_key_is_optional_and_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().dev_api_key.get_secret_value() == ""
    monkeypatch.setenv("DEV_API_KEY", "lcp-local-dev-key-0123456789")
    settings = Settings()
    assert settings.dev_api_key.get_secret_value() == "lcp-local-dev-key-0123456789"
    assert "lcp-local" not in repr(settings)


def test_a_placeholder_dev_key_is_refused_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEV_API_KEY", "dev")
    Settings()  # fine in development
    monkeypatch.setenv("ENVIRONMENT", "production")
    with pytest.raises(pydantic.ValidationError, match="DEV_API_KEY"):
        Settings()
