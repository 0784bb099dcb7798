"""Settings of the gateway (env vars only)."""

from __future__ import annotations

from pydantic import Field

from shared.settings import BaseServiceSettings


class Settings(BaseServiceSettings):
    """The HTTP edge: where it listens, how long it waits, and the defaults it applies to requests."""

    # GATEWAY_ prefixed: process runners (honcho, foreman, Heroku) set a PORT of their own.
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8000
    default_tenant: str = Field(default="default", description="Tenant of every request until API keys exist.")
    request_timeout_seconds: float = Field(default=120.0, gt=0, description="Wait for the first reply (504 after).")
    stream_idle_timeout_seconds: float = Field(default=60.0, gt=0, description="Longest gap between stream chunks.")
    control_timeout_seconds: float = Field(default=2.0, gt=0, description="Health, stats and model-list queries.")
    max_body_bytes: int = Field(default=4 * 1024 * 1024, gt=0)
    admin_api_key: str = Field(default="", description="Bearer token of the admin API; empty: admin API disabled.")
