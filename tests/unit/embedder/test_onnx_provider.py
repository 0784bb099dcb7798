"""The ONNX provider with the real packaged model: exported once into a temporary cache, checked against torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from services.embedder.providers import onnx
from services.embedder.providers.local import LocalEmbeddingProvider
from services.embedder.providers.onnx import OnnxEmbeddingProvider, read_sentence_config
from tests.unit.embedder.loop_check import loop_ticks_while_embedding

TEXTS = [
    "What is the boiling point of water at sea level?",
    "At sea level, what temperature does water boil at?",
    "How do I bake sourdough bread?",
    "",
    "hi",
    "Ünïcödé façade, naïve café in 東京 — does it embed?",
    "HOW TO INVEST   in index funds?!",
    "a much longer text about nothing in particular " * 12,
    "x" * 20_000,  # cut by the tokenizer to max_seq_length tokens
]


@pytest.fixture(scope="module")
async def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
async def provider(cache_dir: Path) -> AsyncIterator[OnnxEmbeddingProvider]:
    provider = OnnxEmbeddingProvider(threads=1, cache_dir=cache_dir)
    await provider.start()
    yield provider
    await provider.close()


@pytest.fixture(scope="module")
async def torch_provider() -> AsyncIterator[LocalEmbeddingProvider]:
    provider = LocalEmbeddingProvider(threads=1)
    await provider.start()
    yield provider
    await provider.close()


async def test_vectors_match_sentence_transformers_on_torch(
    provider: OnnxEmbeddingProvider, torch_provider: LocalEmbeddingProvider
) -> None:
    onnx_vectors = np.asarray(await provider.embed(TEXTS))
    torch_vectors = np.asarray(await torch_provider.embed(TEXTS))

    assert provider.dim == torch_provider.dim == 384
    assert provider.max_input_chars == torch_provider.max_input_chars
    assert onnx_vectors.shape == (len(TEXTS), 384)
    assert np.allclose(np.linalg.norm(onnx_vectors, axis=1), 1.0, atol=1e-5)
    assert float(np.min(np.sum(onnx_vectors * torch_vectors, axis=1))) >= 0.9999


async def test_a_text_embeds_the_same_alone_and_in_any_batch(provider: OnnxEmbeddingProvider) -> None:
    (alone,) = await provider.embed([TEXTS[0]])
    # More texts than one bucket, of mixed lengths: each comes back in its own place.
    batch = await provider.embed([*TEXTS, *reversed(TEXTS), TEXTS[0]])

    assert np.allclose(alone, batch[0], atol=1e-5)
    assert np.allclose(alone, batch[-1], atol=1e-5)
    assert np.allclose(batch[: len(TEXTS)], batch[len(TEXTS) : 2 * len(TEXTS)][::-1], atol=1e-5)


async def test_a_later_start_reuses_the_exported_graph(
    cache_dir: Path, provider: OnnxEmbeddingProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_export(model_dir: Path, target: Path) -> None:
        raise AssertionError("exported again")

    monkeypatch.setattr(onnx, "export_graph", no_export)
    again = OnnxEmbeddingProvider(threads=1, cache_dir=cache_dir)
    await again.start()

    assert again.loaded
    assert [Path(entry.name).suffix for entry in os.scandir(cache_dir)] == [".onnx"]
    assert np.allclose(await again.embed(TEXTS[:2]), await provider.embed(TEXTS[:2]), atol=1e-6)
    await again.close()


async def test_the_event_loop_keeps_running_while_the_model_encodes(provider: OnnxEmbeddingProvider) -> None:
    assert await loop_ticks_while_embedding(provider) > 5


def test_a_model_pooled_otherwise_than_by_mean_is_refused(tmp_path: Path) -> None:
    (tmp_path / "tokenizer.json").write_text("{}")
    (tmp_path / "modules.json").write_text(
        json.dumps([{"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}])
    )
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_cls_token": True}))

    with pytest.raises(ValueError, match="mean pooling only"):
        read_sentence_config(tmp_path)


def test_an_unwritable_target_is_an_os_error(tmp_path: Path) -> None:
    """The child process's exit status tells the caller to try another directory."""
    (tmp_path / "a-file").write_text("")
    with pytest.raises(OSError):
        onnx.export_graph(onnx.model_directory(onnx.PACKAGED_MODEL), tmp_path / "a-file" / "model.onnx")


def test_a_first_start_exports_without_torch_in_the_embedder(tmp_path: Path) -> None:
    """The export runs in a child process: the embedder never holds torch (about 350 MB)."""
    script = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from services.embedder.providers.onnx import OnnxEmbeddingProvider\n"
        "async def main():\n"
        f"    p = OnnxEmbeddingProvider(threads=1, cache_dir=Path({str(tmp_path)!r}))\n"
        "    await p.start()\n"
        "    assert len((await p.embed(['hello']))[0]) == 384\n"
        "    await p.close()\n"
        "    print('torch' in sys.modules)\n"
        "asyncio.run(main())\n"
    )
    root = Path(__file__).resolve().parents[3]
    done = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "False"
    assert [entry.suffix for entry in tmp_path.iterdir()] == [".onnx"]
