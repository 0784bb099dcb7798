"""Embedding providers, one module per backend; `make_provider` picks the one the settings name."""

from __future__ import annotations

from services.embedder.providers.base import EmbeddingProvider
from services.embedder.providers.local import LocalEmbeddingProvider
from services.embedder.providers.onnx import OnnxEmbeddingProvider
from services.embedder.providers.openai_api import OpenAIEmbeddingProvider
from services.embedder.settings import Settings

__all__ = [
    "EmbeddingProvider",
    "LocalEmbeddingProvider",
    "OnnxEmbeddingProvider",
    "OpenAIEmbeddingProvider",
    "make_provider",
]


def make_provider(settings: Settings) -> EmbeddingProvider:
    """The provider `EMBEDDING_PROVIDER` names (local: on `EMBEDDER_RUNTIME`), from the settings, not started."""
    if settings.embedding_provider == "openai":
        return OpenAIEmbeddingProvider(
            settings.openai_embedding_model,
            api_key=settings.embedding_api_key.get_secret_value(),
            base_url=settings.embedding_base_url,
            dimensions=settings.embedding_dimensions,
            timeout_seconds=settings.embedding_timeout_seconds,
        )
    if settings.embedder_runtime == "onnx":
        return OnnxEmbeddingProvider(
            settings.local_model_name, threads=settings.embedder_threads, cache_dir=settings.embedder_model_cache
        )
    return LocalEmbeddingProvider(settings.local_model_name, threads=settings.embedder_threads)
