"""Settings of the LLM worker: which upstreams to call (and for which models), how patiently, how many at once."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import yaml
from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from services.llm_worker.routing import RoutesFileError, UpstreamConfig, parse_routes, single_upstream
from shared.settings import BaseServiceSettings, refuse_placeholder


class Settings(BaseServiceSettings):
    """Env vars: UPSTREAMS_FILE, or UPSTREAM_BASE_URL and UPSTREAM_API_KEY (or OPENAI_API_KEY); LLM_CONCURRENCY, ..."""

    # Merged with the base config; populate_by_name lets code pass upstream_api_key=... despite the env aliases.
    model_config = SettingsConfigDict(populate_by_name=True)

    upstreams_file: str = Field(
        default="", description="YAML routes file naming several upstreams and the models each serves."
    )
    upstream_base_url: str = ""  # any OpenAI-compatible server (vLLM, Ollama, a gateway); "" = OpenAI or the mock
    upstream_api_key: SecretStr = Field(
        default=SecretStr(""), validation_alias=AliasChoices("UPSTREAM_API_KEY", "OPENAI_API_KEY")
    )
    mock_upstream_url: str = "http://127.0.0.1:8100/v1"  # the mock's OpenAI base URL (its Anthropic API is beside)
    upstream_timeout_seconds: float = Field(default=60.0, gt=0)
    upstream_max_retries: int = Field(default=2, ge=0)
    anthropic_default_max_tokens: int = Field(
        default=4096, ge=1, description="max_tokens sent to Anthropic for an OpenAI-format request that sets none."
    )
    llm_concurrency: int = Field(default=64, ge=1)  # prefetch: upstream calls in flight per worker
    cache_tool_calls: bool = False  # tool-call answers depend on tool state the cache can't see
    prices_file: str = ""
    metrics_port: int = 9103

    @model_validator(mode="after")
    def _refuse_mock_in_production(self) -> Settings:
        # In production the mock upstream would silently answer users with nonsense: require a real one.
        if not self.upstream_base_url and not self.upstreams_file:
            refuse_placeholder(
                self.upstream_api_key.get_secret_value(), "UPSTREAM_API_KEY (or OPENAI_API_KEY)", self.environment
            )
        return self

    def upstreams(self, environ: Mapping[str, str] | None = None) -> list[UpstreamConfig]:
        """The upstreams to route to: the routes file's (keys from the variables it names), else the env vars'.

        Raises RoutesFileError when the file is missing, not YAML, or names an upstream that can't work.
        """
        if not self.upstreams_file:
            return single_upstream(
                self.upstream_base_url, self.upstream_api_key.get_secret_value(), self.mock_upstream_url
            )
        path = Path(self.upstreams_file)
        try:
            data = yaml.safe_load(path.read_text())
        except OSError as exc:
            raise RoutesFileError(f"UPSTREAMS_FILE {path}: {exc.strerror or exc}") from None
        except yaml.YAMLError as exc:
            raise RoutesFileError(f"UPSTREAMS_FILE {path} is not YAML: {exc}") from None
        upstreams = parse_routes(data, os.environ if environ is None else environ, self.mock_upstream_url)
        if self.environment == "production":
            for upstream in upstreams:
                if upstream.is_mock:
                    raise RoutesFileError(f"routes file: upstream {upstream.name!r} is the mock upstream")
                if upstream.key_variable:
                    refuse_placeholder(upstream.api_key, upstream.key_variable, self.environment)
        return upstreams
