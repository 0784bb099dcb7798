"""Micro-batching: many concurrent embed calls become few provider calls.

A model embeds 64 texts in far less than 64 times the time of one, so texts from concurrent
requests are gathered into one batch. Nothing waits on purpose: when the model is idle, the texts
that are there go at once (a lone lookup pays no gathering delay); texts that arrive while a batch
runs gather into the next one, up to `max_size`. One batch is in flight at a time, so under load
batches fill up by themselves and the model is never idle.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from services.embedder.metrics import BATCH_DURATION, BATCH_SIZE, QUEUE_WAIT
from services.embedder.providers.base import EmbeddingProvider

log = logging.getLogger(__name__)


class BatcherClosed(RuntimeError):
    """The batcher was closed before this text was embedded."""


@dataclass
class _Waiting:
    """One distinct text waiting for a batch; every caller that asked for it awaits the same future."""

    text: str
    future: asyncio.Future[list[float]]
    arrived: float = field(default_factory=time.monotonic)


class MicroBatcher:
    """Gathers the texts of concurrent `embed` calls into batches for one provider."""

    def __init__(self, provider: EmbeddingProvider, *, max_size: int = 64) -> None:
        if max_size < 1:
            raise ValueError("max_size must be at least 1")
        self._provider = provider
        self._max_size = max_size
        # Insertion-ordered: the first entry is the oldest waiting text. Keyed by text: duplicates
        # within a batch are embedded once.
        self._waiting: dict[str, _Waiting] = {}
        # Set when a text arrives while the dispatcher waits for one.
        self._wake = asyncio.Event()
        self._dispatcher: asyncio.Task[None] | None = None
        self._closed = False

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed `texts` (in order) as part of whatever batch they fall into.

        Raises what the provider raised if a batch holding one of these texts failed.
        """
        if self._closed:
            raise BatcherClosed("the embedding batcher is closed")
        if not texts:
            return []
        self._ensure_dispatcher()
        futures = [self._enqueue(text) for text in texts]
        # Not gather(): cancelling this caller must not cancel futures other callers share.
        await asyncio.wait(futures)
        for future in futures:
            error = future.exception()
            if error is not None:
                raise error
        return [future.result() for future in futures]

    def _enqueue(self, text: str) -> asyncio.Future[list[float]]:
        entry = self._waiting.get(text)
        if entry is None:
            entry = _Waiting(text, asyncio.get_running_loop().create_future())
            self._waiting[text] = entry
            self._wake.set()
        return entry.future

    def _ensure_dispatcher(self) -> None:
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = asyncio.get_running_loop().create_task(self._dispatch(), name="embed-batcher")

    async def _dispatch(self) -> None:
        """Forever: wait for texts, run what waits (up to `max_size`) as one batch; one batch at a time."""
        while True:
            while not self._waiting:
                self._wake.clear()
                await self._wake.wait()
            await self._run(self._take())

    def _take(self) -> list[_Waiting]:
        batch = list(itertools.islice(self._waiting.values(), self._max_size))
        for entry in batch:
            del self._waiting[entry.text]
        return batch

    async def _run(self, batch: list[_Waiting]) -> None:
        now = time.monotonic()
        for entry in batch:
            QUEUE_WAIT.observe(now - entry.arrived)
        BATCH_SIZE.observe(len(batch))
        started = time.perf_counter()
        try:
            vectors = await self._provider.embed([entry.text for entry in batch])
            if len(vectors) != len(batch):
                raise ValueError(f"the provider returned {len(vectors)} vectors for {len(batch)} texts")
        except asyncio.CancelledError:
            _fail(batch, BatcherClosed("the embedding batcher was closed while embedding"))
            raise
        except Exception as exc:
            log.warning("embedding a batch of %d texts failed: %s", len(batch), exc)
            _fail(batch, exc)
        else:
            for entry, vector in zip(batch, vectors, strict=True):
                if not entry.future.done():
                    entry.future.set_result(vector)
        finally:
            BATCH_DURATION.observe(time.perf_counter() - started)

    async def close(self) -> None:
        """Stop the dispatcher; callers still waiting get BatcherClosed."""
        self._closed = True
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._dispatcher
            self._dispatcher = None
        waiting = list(self._waiting.values())
        self._waiting.clear()
        _fail(waiting, BatcherClosed("the embedding batcher is closed"))


def _fail(entries: list[_Waiting], error: BaseException) -> None:
    for entry in entries:
        if not entry.future.done():
            entry.future.set_exception(error)
            # Mark it retrieved: a caller that was cancelled meanwhile would otherwise leave
            # "exception was never retrieved" in the logs; the callers still waiting see it anyway.
            entry.future.exception()
