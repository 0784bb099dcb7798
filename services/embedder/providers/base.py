"""The embedding provider interface: what the batcher and the handler need from a model."""

from __future__ import annotations

import abc


class EmbeddingProvider(abc.ABC):
    """Turns texts into unit-length vectors; one implementation per backend, chosen from settings."""

    @property
    @abc.abstractmethod
    def model(self) -> str:
        """The model's name, as reported to callers (cache entries are only comparable within one model)."""

    @property
    @abc.abstractmethod
    def dim(self) -> int:
        """Length of every vector this provider returns (known once started)."""

    @property
    @abc.abstractmethod
    def max_input_chars(self) -> int:
        """Longest text worth sending: longer texts are cut to this many characters before embedding."""

    @property
    @abc.abstractmethod
    def loaded(self) -> bool:
        """True once `start` has finished and until `close`."""

    @abc.abstractmethod
    async def start(self) -> None:
        """Load the model or connect to the API; called once, before any `embed`."""

    @abc.abstractmethod
    async def embed(self, texts: list[str]) -> list[list[float]]:
        """Embed `texts` in one call: one unit-length vector of length `dim` per text, in order."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release the model or the API client."""
