"""Settings of the tenants service and of its CLI (env vars only)."""

from __future__ import annotations

from pydantic import Field, SecretStr, model_validator

from shared.settings import BaseServiceSettings, DatabaseSettings, refuse_placeholder


class Settings(BaseServiceSettings, DatabaseSettings):
    """Environment variables of the tenants service (e.g. DATABASE_URL, DEV_API_KEY)."""

    metrics_port: int = 9105
    dev_api_key: SecretStr = Field(
        default=SecretStr(""),
        description="When set, the tenant 'dev' gets a key with exactly this value at startup (idempotent).",
    )
    tenants_prefetch: int = Field(default=16, ge=1, description="Requests handled at once (each holds a connection).")

    @model_validator(mode="after")
    def _refuse_placeholder_dev_key(self) -> Settings:
        value = self.dev_api_key.get_secret_value()
        if value:
            refuse_placeholder(value, "DEV_API_KEY", self.environment)
        return self


class CliSettings(BaseServiceSettings):
    """What the CLI needs: the broker (RABBITMQ_URL, BROKER_PREFIX) and how long to wait for an answer."""

    tenants_timeout_seconds: float = Field(default=10.0, gt=0)
