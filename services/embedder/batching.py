"""The embedder's batches: the texts of concurrent embed requests become one model call each.

A model embeds 64 texts in far less than 64 times the time of one, so texts from concurrent
requests are gathered (the shared `Batcher`). Nothing waits on purpose: when the model is idle, the
texts that are there go at once (a lone lookup pays no gathering delay); texts that arrive while a
batch runs gather into the next one, up to `max_size`, so under load batches fill up by themselves.
The same text asked for twice in one batch is embedded once.
"""

from __future__ import annotations

import time

from services.embedder.metrics import BATCH_DURATION, BATCH_SIZE, QUEUE_WAIT
from services.embedder.providers.base import EmbeddingProvider
from shared.batching import Batcher

EmbedBatcher = Batcher[str, list[float]]


def embed_batcher(provider: EmbeddingProvider, *, max_size: int = 64) -> EmbedBatcher:
    """A batcher whose batches are calls of `provider`."""

    async def embed(texts: list[str]) -> list[list[float]]:
        BATCH_SIZE.observe(len(texts))
        started = time.perf_counter()
        try:
            return await provider.embed(texts)
        finally:
            BATCH_DURATION.observe(time.perf_counter() - started)

    return Batcher(embed, name="embed", max_size=max_size, key=_text, observe_wait=QUEUE_WAIT.observe)


def _text(text: str) -> str:
    return text
