"""Settings pieces every service builds its own `Settings` from: env vars only, typed, validated."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "replace-me", "secret", "sk-mock", "dev"}
# Passwords that ship as defaults somewhere: RabbitMQ's guest, the compose file's and images' postgres, ...
PLACEHOLDER_PASSWORDS = PLACEHOLDER_SECRETS | {"guest", "postgres", "password", "admin", "redis", "rabbitmq"}


class BaseServiceSettings(BaseSettings):
    """What every service has: its environment, logging, broker and the metrics endpoint.

    Secrets are `SecretStr` (never shown in a repr or an error); in production every one of them,
    the services' own and their mixins', is checked for placeholders at startup, all at once.
    """

    # hide_input_in_errors: a settings error must not print the environment it was given (secrets).
    model_config = SettingsConfigDict(extra="ignore", env_file=None, hide_input_in_errors=True)

    environment: Literal["development", "test", "production"] = "development"
    log_level: str = "INFO"
    rabbitmq_url: SecretStr = SecretStr("amqp://guest:guest@127.0.0.1:5672/")
    broker_prefix: str = Field(
        default="llmcache",
        description="Prefix of every exchange and queue name: isolates deployments (and test runs) on one broker.",
    )
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 0  # 0: no separate metrics endpoint (the gateway serves /metrics itself)
    shutdown_grace_seconds: float = 10.0
    # Tracing (shared/tracing.py): off unless an OTLP/HTTP endpoint is set, e.g. http://otel-collector:4318.
    otel_exporter_otlp_endpoint: str = ""
    otel_traces_sampler_arg: float = Field(
        default=1.0, ge=0.0, le=1.0, description="Share of requests traced (decided at the gateway)."
    )

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> BaseServiceSettings:
        if self.environment != "production":
            return self
        problems = []
        for name, field in type(self).model_fields.items():
            if field.annotation is SecretStr:
                problem = placeholder_problem(getattr(self, name).get_secret_value(), name.upper())
                if problem is not None:
                    problems.append(problem)
        if problems:
            raise ValueError("placeholder secrets in production: " + "; ".join(problems) + ". Set real secrets.")
        return self


class RedisSettings(BaseSettings):
    """Redis connection and the prefix of every key this deployment writes."""

    redis_url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")
    redis_prefix: str = "llmcache"


class DatabaseSettings(BaseSettings):
    """PostgreSQL (with pgvector) connection. `make run` starts an embedded server when unset."""

    database_url: SecretStr = SecretStr("")
    database_pool_min: int = 1
    database_pool_max: int = 8

    @model_validator(mode="after")
    def _require_url(self) -> DatabaseSettings:
        if not self.database_url.get_secret_value():
            raise ValueError(
                "DATABASE_URL is not set. `make run` starts an embedded PostgreSQL with pgvector and sets it; "
                "for a real deployment point it at PostgreSQL with the pgvector extension."
            )
        return self


def refuse_placeholder(value: str, name: str, environment: str) -> None:
    """Refuse a placeholder secret (an empty one included) outside development and tests."""
    if environment == "production" and value.strip().lower() in PLACEHOLDER_SECRETS:
        raise ValueError(f"{name} is a placeholder; set a real secret in production")


def placeholder_problem(value: str, name: str) -> str | None:
    """What is wrong with a secret set to a placeholder, or None. An empty one is not set at all (its
    service decides whether it must be); a URL's user and password are checked, not the URL."""
    if "://" in value:
        try:
            parts = urlsplit(value)
            user, password = parts.username, parts.password
        except ValueError:
            return None  # not a URL after all: the service that connects will say so
        if password is not None and password.strip().lower() in PLACEHOLDER_PASSWORDS:
            return f"{name} has a placeholder password"
        if user and user.strip().lower() in PLACEHOLDER_SECRETS - {""}:
            return f"{name} has a placeholder user"
        return None
    if value and value.strip().lower() in PLACEHOLDER_SECRETS:
        return f"{name} is a placeholder"
    return None
