"""Settings of the mock upstream: where it listens and how slow it pretends to be (MOCK_* env vars)."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """MOCK_HOST, MOCK_PORT, MOCK_LATENCY_MS, MOCK_CHUNK_DELAY_MS, MOCK_LOG_LEVEL."""

    model_config = SettingsConfigDict(env_prefix="MOCK_", extra="ignore", env_file=None)

    host: str = "127.0.0.1"
    port: int = 8100
    latency_ms: float = 0.0  # before every answer; a request's X-Mock-Latency-Ms header overrides it
    chunk_delay_ms: float = 0.0  # between streamed chunks
    log_level: str = "INFO"
