"""The embedder's settings: which embedding provider, how it runs and how requests are batched."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator

from shared.settings import BaseServiceSettings, refuse_placeholder


class Settings(BaseServiceSettings):
    """Everything the embedder reads from the environment."""

    metrics_port: int = 9102

    embedding_provider: Literal["local", "openai"] = "local"

    # local: the packaged model (no download at run time) on the CPU, run by ONNX Runtime (the graph is
    # exported once from the packaged weights into the model cache) or by sentence-transformers on torch.
    local_model_name: str = "all-MiniLM-L6-v2"
    embedder_runtime: Literal["onnx", "torch"] = "onnx"
    embedder_threads: int = Field(default=1, ge=1, description="Intra-op threads of the local model's runtime.")
    embedder_model_cache: Path = Field(
        default=Path(".data/models"),
        description="Where the ONNX runtime keeps the graphs it exported; created if missing.",
    )

    # openai: any OpenAI-compatible embeddings API.
    openai_embedding_model: str = "text-embedding-3-small"
    embedding_base_url: str = Field(default="", description="Embeddings API base URL; empty: OpenAI's default.")
    embedding_api_key: SecretStr = Field(
        default=SecretStr(""),
        validation_alias=AliasChoices("EMBEDDING_API_KEY", "OPENAI_API_KEY"),
    )
    embedding_dimensions: int | None = Field(default=None, ge=1, description="Ask the API for shortened vectors.")
    embedding_timeout_seconds: float = Field(default=10.0, gt=0)

    # Micro-batching of concurrent requests into one model call: texts that arrive while a batch runs
    # go together in the next one, up to this many (an idle model takes a text at once).
    batch_max_size: int = Field(default=64, ge=1)
    embedder_prefetch: int = Field(default=128, ge=1)

    @model_validator(mode="after")
    def _require_api_key(self) -> Settings:
        # Only OpenAI itself is sure to need a key; a self-hosted compatible server may not.
        if self.embedding_provider == "openai" and not self.embedding_base_url:
            if not self.embedding_api_key.get_secret_value():
                raise ValueError("EMBEDDING_PROVIDER=openai needs EMBEDDING_API_KEY (or OPENAI_API_KEY)")
            refuse_placeholder(self.embedding_api_key.get_secret_value(), "EMBEDDING_API_KEY", self.environment)
        return self
