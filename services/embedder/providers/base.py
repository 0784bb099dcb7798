"""The embedding provider interface: what the batcher and the handler need from a model."""

from __future__ import annotations

import abc
import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger(__name__)

# WordPiece turns every word of up to 100 characters into at least one token (longer words into
# [UNK]), so text beyond ~100 characters per token of the window is cut by the tokenizer anyway;
# cutting it earlier only saves tokenizing megabytes that would be thrown away.
CHARS_PER_TOKEN_BOUND = 100


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


class ModelOnOneThread(EmbeddingProvider):
    """A model run on this machine's CPU, in one worker thread (torch and ONNX Runtime release the GIL).

    The event loop keeps consuming and replying while a batch is encoded, and one batch at a time
    on the model is what the micro-batcher assumes. Runtimes implement loading and encoding.
    """

    runtime = "the CPU"  # for the log line

    def __init__(self, model_name: str, *, threads: int = 1) -> None:
        self._model_name = model_name
        self._threads = threads
        self._dim = 0
        self._max_input_chars = 256 * CHARS_PER_TOKEN_BOUND
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embedder-model")

    @property
    def model(self) -> str:
        return self._model_name

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def max_input_chars(self) -> int:
        return self._max_input_chars

    async def start(self) -> None:
        """Load the model on its thread, warm-up included (the first calls are several times slower)."""
        await asyncio.get_running_loop().run_in_executor(self._executor, self._load)
        log.info("loaded %s on %s (dim %d, %d thread(s))", self._model_name, self.runtime, self._dim, self._threads)

    async def embed(self, texts: list[str]) -> list[list[float]]:
        if not self.loaded:
            raise RuntimeError("the local embedding model is not loaded")
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._encode, texts)

    async def close(self) -> None:
        self._unload()
        self._executor.shutdown(wait=True)

    @abc.abstractmethod
    def _load(self) -> None:
        """Load and warm up the model, and set `_dim` (and `_max_input_chars` if the model says)."""

    @abc.abstractmethod
    def _encode(self, texts: list[str]) -> list[list[float]]:
        """Unit vectors as Python floats (converting is CPU work too: it stays off the event loop)."""

    @abc.abstractmethod
    def _unload(self) -> None:
        """Drop the model."""
