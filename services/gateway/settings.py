"""Settings of the gateway (env vars only)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, model_validator

from services.gateway.addresses import TrustedProxies
from shared.settings import BaseServiceSettings, RedisSettings

MIN_ADMIN_KEY_LENGTH = 16


class Settings(BaseServiceSettings, RedisSettings):
    """The HTTP edge: where it listens, how long it waits, and the defaults it applies to requests."""

    # GATEWAY_ prefixed: process runners (honcho, foreman, Heroku) set a PORT of their own.
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8000
    default_tenant: str = Field(default="default", description="Tenant of every request when AUTH_REQUIRED=false.")
    request_timeout_seconds: float = Field(default=120.0, gt=0, description="Wait for the first reply (504 after).")
    stream_idle_timeout_seconds: float = Field(default=60.0, gt=0, description="Longest gap between stream chunks.")
    control_timeout_seconds: float = Field(default=2.0, gt=0, description="Health, stats and model-list queries.")
    status_cache_seconds: float = Field(
        default=1.0, ge=0, description="/status answers this long from its last fan-out (it needs no key)."
    )
    models_cache_seconds: float = Field(
        default=60.0, ge=0, description="How long /v1/models reuses the upstreams' lists."
    )
    max_body_bytes: int = Field(default=4 * 1024 * 1024, gt=0, description="Larger bodies: 413, while reading.")
    max_body_depth: int = Field(
        default=64, ge=2, le=128, description="Deeper JSON nesting: 400 (the workers' JSON parsers stop at 200)."
    )
    max_body_containers: int = Field(
        default=100_000, ge=1, description="More JSON objects and arrays in a body: 400 (each costs memory parsed)."
    )
    admin_api_key: SecretStr = Field(
        default=SecretStr(""), description="Bearer token of the admin API; empty: admin API disabled."
    )
    auth_required: bool = Field(default=True, description="Require an API key; false: all is DEFAULT_TENANT's.")
    key_cache_ttl_seconds: float = Field(default=5.0, ge=0, description="How long a key look-up is trusted.")
    key_cache_max_entries: int = Field(default=100_000, ge=1, description="Valid keys remembered.")
    key_cache_max_unknown: int = Field(
        default=10_000, ge=1, description="Unknown keys remembered (apart: they never push valid keys out)."
    )
    auth_failures_per_minute: int = Field(
        default=30, ge=0, description="Unknown keys a client address may send a minute before 429s (0: no limit)."
    )
    forwarded_allow_ips: str = Field(
        default="",
        description="Proxies (addresses, networks) whose X-Forwarded-For names the client; failed keys are counted"
        " per client address. None by default: any client could name any address.",
    )
    key_stale_if_error_seconds: float = Field(
        default=3600.0, ge=0, description="How long a known-valid key keeps working while keys can't be checked."
    )
    tenant_max_in_flight: int = Field(
        default=32,
        ge=0,
        description="Requests one tenant may have in flight in this gateway process (429 past it; 0: no cap).",
    )
    limits_timeout_seconds: float = Field(default=0.5, gt=0, description="Redis timeout of limit checks (fail open).")
    log_requests: bool = Field(default=True, description="One log line per request: result, match, model, latency.")
    dashboard_dir: str = Field(default="", description="The dashboard's build (default: services/dashboard/dist).")

    def dashboard_path(self) -> Path:
        """Where the dashboard's static build is."""
        return Path(self.dashboard_dir) if self.dashboard_dir else Path(__file__).parents[1] / "dashboard" / "dist"

    def trusted_proxies(self) -> TrustedProxies:
        """The proxies of FORWARDED_ALLOW_IPS."""
        return TrustedProxies.parse(self.forwarded_allow_ips)

    @model_validator(mode="after")
    def _refuse_unreadable_proxies(self) -> Settings:
        try:
            self.trusted_proxies()
        except ValueError as exc:
            raise ValueError(f"FORWARDED_ALLOW_IPS: {exc}") from None
        return self

    @model_validator(mode="after")
    def _refuse_a_short_admin_key(self) -> Settings:
        # The admin key is a bearer token people choose: in production it must be long enough to be a secret
        # (placeholders such as change-me are refused with every other secret, by the base settings).
        key = self.admin_api_key.get_secret_value()
        if self.environment == "production" and key and len(key) < MIN_ADMIN_KEY_LENGTH:
            raise ValueError(f"ADMIN_API_KEY must be at least {MIN_ADMIN_KEY_LENGTH} characters in production")
        return self
