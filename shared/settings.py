"""Settings pieces every service builds its own `Settings` from: env vars only, typed, validated."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret", "sk-mock", "dev"}


class BaseServiceSettings(BaseSettings):
    """What every service has: its environment, logging, broker and the metrics endpoint."""

    model_config = SettingsConfigDict(extra="ignore", env_file=None)

    environment: Literal["development", "test", "production"] = "development"
    log_level: str = "INFO"
    rabbitmq_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    broker_prefix: str = Field(
        default="llmcache",
        description="Prefix of every exchange and queue name: isolates deployments (and test runs) on one broker.",
    )
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 0  # 0: no separate metrics endpoint (the gateway serves /metrics itself)
    shutdown_grace_seconds: float = 10.0


class RedisSettings(BaseSettings):
    """Redis connection and the prefix of every key this deployment writes."""

    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_prefix: str = "llmcache"


class DatabaseSettings(BaseSettings):
    """PostgreSQL (with pgvector) connection. `make run` starts an embedded server when unset."""

    database_url: str = ""
    database_pool_min: int = 1
    database_pool_max: int = 8

    @model_validator(mode="after")
    def _require_url(self) -> DatabaseSettings:
        if not self.database_url:
            raise ValueError(
                "DATABASE_URL is not set. `make run` starts an embedded PostgreSQL with pgvector and sets it; "
                "for a real deployment point it at PostgreSQL with the pgvector extension."
            )
        return self


def refuse_placeholder(value: str, name: str, environment: str) -> None:
    """Refuse placeholder secrets outside development and tests."""
    if environment == "production" and value.strip().lower() in PLACEHOLDER_SECRETS:
        raise ValueError(f"{name} is a placeholder; set a real secret in production")
