"""The embedder's settings: which embedding provider, how it runs and how requests are batched."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, model_validator

from shared.settings import BaseServiceSettings, refuse_placeholder


class Settings(BaseServiceSettings):
    """Everything the embedder reads from the environment."""

    metrics_port: int = 9102

    embedding_provider: Literal["local", "openai"] = "local"

    # local: sentence-transformers on CPU from the packaged model (no download at run time).
    local_model_name: str = "all-MiniLM-L6-v2"
    embedder_threads: int = Field(default=1, ge=1, description="torch intra-op threads for the local model.")

    # openai: any OpenAI-compatible embeddings API.
    openai_embedding_model: str = "text-embedding-3-small"
    embedding_base_url: str = Field(default="", description="Embeddings API base URL; empty: OpenAI's default.")
    embedding_api_key: str = Field(
        default="",
        repr=False,
        validation_alias=AliasChoices("EMBEDDING_API_KEY", "OPENAI_API_KEY"),
    )
    embedding_dimensions: int | None = Field(default=None, ge=1, description="Ask the API for shortened vectors.")
    embedding_timeout_seconds: float = Field(default=10.0, gt=0)

    # Micro-batching of concurrent requests into one model call.
    batch_max_size: int = Field(default=64, ge=1)
    batch_max_wait_ms: float = Field(default=2.0, ge=0)
    embedder_prefetch: int = Field(default=128, ge=1)

    @model_validator(mode="after")
    def _require_api_key(self) -> Settings:
        # Only OpenAI itself is sure to need a key; a self-hosted compatible server may not.
        if self.embedding_provider == "openai" and not self.embedding_base_url:
            if not self.embedding_api_key:
                raise ValueError("EMBEDDING_PROVIDER=openai needs EMBEDDING_API_KEY (or OPENAI_API_KEY)")
            refuse_placeholder(self.embedding_api_key, "EMBEDDING_API_KEY", self.environment)
        return self
