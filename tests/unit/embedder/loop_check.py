"""Whether the event loop keeps turning while a provider embeds (a model must run off the loop)."""

from __future__ import annotations

import asyncio

from services.embedder.providers.base import EmbeddingProvider


async def loop_ticks_while_embedding(provider: EmbeddingProvider, texts: int = 256) -> int:
    """How many 1 ms ticks the loop made while the provider embedded `texts` sentences."""
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    ticker = asyncio.create_task(tick())
    try:
        await provider.embed([f"sentence number {i} about something" for i in range(texts)])
    finally:
        ticker.cancel()
    return ticks
