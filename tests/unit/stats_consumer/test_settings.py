"""Stats consumer settings: defaults and the prefetch >= batch size rule."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.stats_consumer.settings import Settings

URL = "postgresql://postgres@localhost/postgres"


def test_defaults() -> None:
    settings = Settings(database_url=URL)
    assert (settings.stats_batch_max_size, settings.stats_batch_max_wait_ms, settings.stats_prefetch) == (200, 200, 500)
    assert settings.metrics_port == 9104


def test_prefetch_must_fill_a_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATS_PREFETCH", "100")
    with pytest.raises(ValidationError, match="STATS_PREFETCH"):
        Settings(database_url=URL)
