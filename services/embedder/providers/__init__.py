"""Embedding providers, one module per backend; `make_provider` picks the one the settings name."""

from __future__ import annotations

from services.embedder.providers.base import EmbeddingProvider
from services.embedder.providers.local import LocalEmbeddingProvider
from services.embedder.providers.openai_api import OpenAIEmbeddingProvider
from services.embedder.settings import Settings

__all__ = ["EmbeddingProvider", "LocalEmbeddingProvider", "OpenAIEmbeddingProvider", "make_provider"]


def make_provider(settings: Settings) -> EmbeddingProvider:
    """The provider `EMBEDDING_PROVIDER` names, configured from the settings (not started)."""
    if settings.embedding_provider == "openai":
        return OpenAIEmbeddingProvider(
            settings.openai_embedding_model,
            api_key=settings.embedding_api_key,
            base_url=settings.embedding_base_url,
            dimensions=settings.embedding_dimensions,
            timeout_seconds=settings.embedding_timeout_seconds,
        )
    return LocalEmbeddingProvider(settings.local_model_name, threads=settings.embedder_threads)
