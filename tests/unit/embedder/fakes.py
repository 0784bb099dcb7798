"""Test doubles shared by the embedder's unit tests."""

from __future__ import annotations

import asyncio

from services.embedder.providers.base import EmbeddingProvider


def vector_of(text: str) -> list[float]:
    """A vector that identifies its text, so each caller can check it got its own."""
    return [float(len(text)), float(sum(map(ord, text)))]


class FakeProvider(EmbeddingProvider):
    """Counts calls and overlapping calls; optionally slow, optionally failing on one text."""

    def __init__(self, *, delay: float = 0.01, fail_on: str | None = None) -> None:
        self.calls: list[list[str]] = []
        self.delay = delay
        self.fail_on = fail_on
        self.in_flight = 0
        self.max_in_flight = 0

    model = "fake"  # type: ignore[assignment]
    dim = 2  # type: ignore[assignment]
    max_input_chars = 1000  # type: ignore[assignment]
    loaded = True  # type: ignore[assignment]

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def embed(self, texts: list[str]) -> list[list[float]]:
        self.calls.append(list(texts))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
            if self.fail_on is not None and self.fail_on in texts:
                raise RuntimeError(f"cannot embed {self.fail_on!r}")
            return [vector_of(text) for text in texts]
        finally:
            self.in_flight -= 1
