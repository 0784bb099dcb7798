"""The local model on ONNX Runtime: the same vectors as sentence-transformers on torch, several times faster.

The graph (transformer, mean pooling, L2 normalisation) is exported once from the model's own
weights with torch (onnx_export.py, in a child process, so the embedder itself never holds torch)
into the model cache, keyed by a fingerprint of the model's files, and reused by every later
start. Texts are tokenized by the model's own fast tokenizer (tokenizer.json) with the
settings sentence-transformers uses: truncation to max_seq_length, padding to the longest text.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from services.embedder.providers.base import CHARS_PER_TOKEN_BOUND, ModelOnOneThread
from services.embedder.providers.local import PACKAGED_MODEL, model_directory

log = logging.getLogger(__name__)

# Part of every graph's fingerprint: bump it when onnx_export.py writes a different graph.
GRAPH_FORMAT = "sentence-embedding-v1"

# Texts per model call once a batch is sorted by length: buckets this size waste little on padding
# and are still big enough for efficient matrix products.
BUCKET_SIZE = 8


class OnnxEmbeddingProvider(ModelOnOneThread):
    """A sentence-transformers model (mean pooling) exported to ONNX and run by ONNX Runtime on the CPU."""

    runtime = "ONNX Runtime"

    def __init__(
        self, model_name: str = PACKAGED_MODEL, *, threads: int = 1, cache_dir: Path, bucket_size: int = BUCKET_SIZE
    ) -> None:
        super().__init__(model_name, threads=threads)
        self._cache_dir = cache_dir
        self._session: Any = None
        self._tokenizer: Any = None
        self._lowercase = False
        self._pad_id = 0
        self._bucket_size = bucket_size

    @property
    def loaded(self) -> bool:
        return self._session is not None

    def _load(self) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        model_dir = model_directory(self._model_name)
        config = read_sentence_config(model_dir)
        graph = ensure_onnx_graph(self._model_name, self._cache_dir)

        tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        tokenizer.enable_truncation(config.max_seq_length)
        tokenizer.no_padding()  # _encode pads each bucket itself
        self._lowercase = config.lowercase
        self._pad_id = tokenizer.token_to_id(config.pad_token) or 0

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self._threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only: ORT's warnings about unused initializers are noise
        session = onnxruntime.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])

        self._tokenizer = tokenizer
        self._session = session
        self._dim = len(self._encode(["warm up the model"])[0])
        self._encode([f"warm up sentence number {i}" for i in range(8)])
        self._max_input_chars = config.max_seq_length * CHARS_PER_TOKEN_BOUND

    def _encode(self, texts: list[str]) -> list[list[float]]:
        if self._lowercase:
            texts = [text.lower() for text in texts]
        encodings = self._tokenizer.encode_batch(texts)  # truncated, not padded
        # Sorted by length and run in buckets, each padded only to its own longest text: a batch of
        # short questions with one long one does not pay for the long one's length 64 times.
        order = sorted(range(len(texts)), key=lambda index: len(encodings[index].ids))
        vectors: Any = None
        for start in range(0, len(order), self._bucket_size):
            bucket = order[start : start + self._bucket_size]
            width = len(encodings[bucket[-1]].ids)
            input_ids = np.full((len(bucket), width), self._pad_id, dtype=np.int64)
            attention_mask = np.zeros((len(bucket), width), dtype=np.int64)
            for row, index in enumerate(bucket):
                ids = encodings[index].ids
                input_ids[row, : len(ids)] = ids
                attention_mask[row, : len(ids)] = 1
            (embedded,) = self._session.run(None, {"input_ids": input_ids, "attention_mask": attention_mask})
            if vectors is None:
                vectors = np.empty((len(texts), embedded.shape[1]), dtype=np.float32)
            vectors[bucket] = embedded
        return vectors.tolist()  # type: ignore[no-any-return]

    def _unload(self) -> None:
        self._session = None
        self._tokenizer = None


@dataclass(frozen=True)
class SentenceConfig:
    """What sentence-transformers reads from a model's directory that the ONNX path must match."""

    max_seq_length: int
    lowercase: bool
    pad_token: str


def read_sentence_config(model_dir: Path) -> SentenceConfig:
    """Tokenizer limits and pooling of a sentence-transformers model; refuse what the graph cannot compute."""
    if not (model_dir / "tokenizer.json").is_file():
        raise ValueError(f"{model_dir} has no tokenizer.json: the ONNX runtime needs a fast tokenizer (or use torch)")
    modules = _read_json(model_dir / "modules.json", default=[])
    for module in modules:
        if module.get("type", "").endswith("models.Pooling"):
            pooling = _read_json(model_dir / module.get("path", "") / "config.json", default={})
            modes = {key for key, value in pooling.items() if key.startswith("pooling_mode") and value}
            if modes - {"pooling_mode_mean_tokens"}:
                raise ValueError(f"{model_dir} pools by {sorted(modes)}; the ONNX graph does mean pooling only")
    sentence = _read_json(model_dir / "sentence_bert_config.json", default={})
    tokenizer_config = _read_json(model_dir / "tokenizer_config.json", default={})
    max_seq_length = sentence.get("max_seq_length") or min(tokenizer_config.get("model_max_length", 512), 512)
    pad_token = tokenizer_config.get("pad_token") or "[PAD]"
    if isinstance(pad_token, dict):
        pad_token = pad_token["content"]
    return SentenceConfig(int(max_seq_length), bool(sentence.get("do_lower_case")), str(pad_token))


def _read_json(path: Path, *, default: Any) -> Any:
    return json.loads(path.read_text()) if path.is_file() else default


def graph_fingerprint(model_dir: Path) -> str:
    """Identifies the model's files as installed (names, sizes, modification times) and the graph format."""
    digest = hashlib.sha256(GRAPH_FORMAT.encode())
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        stat = path.stat()
        digest.update(f"{path.relative_to(model_dir)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def ensure_onnx_graph(model_name: str, cache_dir: Path) -> Path:
    """The cached ONNX graph of `model_name`, exported first if no start has done it yet.

    When the cache cannot be written (a read-only image without the pre-built graph) the graph is
    exported into the temporary directory instead, with a warning: it works, but every start pays for it.
    """
    model_dir = model_directory(model_name)
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(model_name).name)
    name = f"{slug}-{graph_fingerprint(model_dir)}.onnx"
    fallback = Path(tempfile.gettempdir()) / "llmcache-models"
    for directory in (cache_dir, fallback):
        if (directory / name).is_file():
            return directory / name
    started = time.perf_counter()
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        target = cache_dir / name
        export_graph(model_dir, target)
    except OSError as exc:
        log.warning("cannot write the model cache %s (%s): exporting into %s instead", cache_dir, exc, fallback)
        fallback.mkdir(parents=True, exist_ok=True)
        target = fallback / name
        export_graph(model_dir, target)
    log.info("exported %s to ONNX in %.1f s: %s", model_name, time.perf_counter() - started, target)
    return target


# onnx_export's exit status when the target can't be written (the caller then tries elsewhere).
EXPORT_CANNOT_WRITE = 3


def export_graph(model_dir: Path, target: Path) -> None:
    """Export in a child process: torch and transformers (about 350 MB) leave with it.

    Raises OSError when the target can't be written, RuntimeError when the export failed otherwise.
    """
    root = str(Path(__file__).resolve().parents[3])
    path = os.environ.get("PYTHONPATH")
    env = {**os.environ, "PYTHONPATH": root if not path else f"{root}{os.pathsep}{path}"}
    done = subprocess.run(
        [sys.executable, "-m", "services.embedder.providers.onnx_export", str(model_dir), str(target)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode == EXPORT_CANNOT_WRITE:
        raise OSError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "cannot write")
    if done.returncode != 0:
        raise RuntimeError(f"exporting {model_dir} to ONNX failed: {done.stderr.strip()[-2000:]}")
