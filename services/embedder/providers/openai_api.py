"""The API provider: any OpenAI-compatible /v1/embeddings endpoint (OpenAI, a self-hosted server)."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import openai

from services.embedder.providers.base import EmbeddingProvider

log = logging.getLogger(__name__)

# OpenAI's embedding models take 8191 tokens; 8,000 characters stays well inside that for any text.
MAX_INPUT_CHARS = 8_000

# Self-hosted compatible servers often need no key, but the SDK refuses to start without one.
NO_KEY = "not-needed"


class OpenAIEmbeddingProvider(EmbeddingProvider):
    """Embeddings from an OpenAI-compatible API, re-normalized to unit length."""

    def __init__(
        self,
        model: str,
        *,
        api_key: str = "",
        base_url: str = "",
        dimensions: int | None = None,
        timeout_seconds: float = 10.0,
        max_retries: int = 2,
    ) -> None:
        self._model = model
        self._api_key = api_key
        self._base_url = base_url
        self._dimensions = dimensions
        self._timeout = timeout_seconds
        self._max_retries = max_retries
        self._dim = dimensions or 0
        self._client: openai.AsyncOpenAI | None = None

    @property
    def model(self) -> str:
        return self._model

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def max_input_chars(self) -> int:
        return MAX_INPUT_CHARS

    @property
    def loaded(self) -> bool:
        return self._client is not None and self._dim > 0

    async def start(self) -> None:
        """Create the client and, unless the dimension is configured, learn it by embedding one text."""
        self._client = openai.AsyncOpenAI(
            api_key=self._api_key or NO_KEY,
            base_url=self._base_url or None,
            timeout=self._timeout,
            max_retries=self._max_retries,
        )
        if not self._dim:
            # Also proves the endpoint and the key work before the service takes requests.
            probe = await self._create(["dimension probe"])
            self._dim = len(probe[0])
        log.info("embedding with %s at %s (dim %d)", self._model, self._base_url or "OpenAI", self._dim)

    async def embed(self, texts: list[str]) -> list[list[float]]:
        vectors = await self._create(texts)
        if any(len(v) != self._dim for v in vectors):
            raise ValueError(f"{self._model} returned vectors of another length than {self._dim}")
        return vectors

    async def _create(self, texts: list[str]) -> list[list[float]]:
        if self._client is None:
            raise RuntimeError("the embeddings client is not started")
        # The API rejects empty strings; a space embeds as "nothing" just the same.
        inputs = [text[:MAX_INPUT_CHARS] or " " for text in texts]
        options: dict[str, Any] = {}
        if self._dimensions:
            options["dimensions"] = self._dimensions
        response = await self._client.embeddings.create(model=self._model, input=inputs, **options)
        data = sorted(response.data, key=lambda item: item.index)
        if len(data) != len(inputs):
            raise ValueError(f"{self._model} returned {len(data)} vectors for {len(inputs)} texts")
        return unit_vectors([item.embedding for item in data])

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


def unit_vectors(vectors: list[list[float]]) -> list[list[float]]:
    """Scale each vector to length 1 (cosine similarity becomes a dot product); zero vectors stay zero."""
    matrix = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (matrix / norms).tolist()
