"""Settings of the LLM worker: which upstream to call, how patiently, and how many calls at once."""

from __future__ import annotations

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import SettingsConfigDict

from shared.settings import BaseServiceSettings, refuse_placeholder


class Settings(BaseServiceSettings):
    """Env vars: UPSTREAM_BASE_URL, UPSTREAM_API_KEY (or OPENAI_API_KEY), MOCK_UPSTREAM_URL, LLM_CONCURRENCY, ..."""

    # Merged with the base config; populate_by_name lets code pass upstream_api_key=... despite the env aliases.
    model_config = SettingsConfigDict(populate_by_name=True)

    upstream_base_url: str = ""  # any OpenAI-compatible server (vLLM, Ollama, a gateway); "" = OpenAI or the mock
    upstream_api_key: str = Field(default="", validation_alias=AliasChoices("UPSTREAM_API_KEY", "OPENAI_API_KEY"))
    mock_upstream_url: str = "http://127.0.0.1:8100/v1"  # used only when no upstream is configured
    upstream_timeout_seconds: float = Field(default=60.0, gt=0)
    upstream_max_retries: int = Field(default=2, ge=0)
    llm_concurrency: int = Field(default=64, ge=1)  # prefetch: upstream calls in flight per worker
    cache_tool_calls: bool = False  # tool-call answers depend on tool state the cache can't see
    prices_file: str = ""
    metrics_port: int = 9103

    @model_validator(mode="after")
    def _refuse_mock_in_production(self) -> Settings:
        # In production the mock upstream would silently answer users with nonsense: require a real one.
        if not self.upstream_base_url:
            refuse_placeholder(self.upstream_api_key, "UPSTREAM_API_KEY (or OPENAI_API_KEY)", self.environment)
        return self
