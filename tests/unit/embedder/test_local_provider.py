"""The local provider with the real packaged all-MiniLM-L6-v2 (loaded once for the module, ~5 s)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import numpy as np
import pytest

from services.embedder.providers.local import LocalEmbeddingProvider
from tests.unit.embedder.loop_check import loop_ticks_while_embedding

PARAPHRASE = (
    "What is the boiling point of water at sea level?",
    "At sea level, what temperature does water boil at?",
)
UNRELATED = "How do I bake sourdough bread?"


@pytest.fixture(scope="module")
async def provider() -> AsyncIterator[LocalEmbeddingProvider]:
    provider = LocalEmbeddingProvider(threads=1)
    await provider.start()
    yield provider
    await provider.close()


async def test_vectors_have_384_dimensions_and_unit_length(provider: LocalEmbeddingProvider) -> None:
    vectors = await provider.embed(["hello world", "", "x" * 50_000])

    assert provider.model == "all-MiniLM-L6-v2"
    assert provider.dim == 384
    assert provider.loaded
    assert [len(v) for v in vectors] == [384, 384, 384]
    assert np.allclose(np.linalg.norm(np.asarray(vectors), axis=1), 1.0, atol=1e-5)


async def test_paraphrases_are_close_and_unrelated_questions_are_not(provider: LocalEmbeddingProvider) -> None:
    first, second, unrelated = np.asarray(await provider.embed([*PARAPHRASE, UNRELATED]))

    assert float(first @ second) > 0.85
    assert float(first @ unrelated) < 0.5
    assert float(second @ unrelated) < 0.5


async def test_a_text_embeds_the_same_alone_and_in_a_batch(provider: LocalEmbeddingProvider) -> None:
    (alone,) = await provider.embed([PARAPHRASE[0]])
    batch = await provider.embed([UNRELATED, PARAPHRASE[0], "a much longer text " * 20])

    assert np.allclose(alone, batch[1], atol=1e-5)


async def test_the_event_loop_keeps_running_while_the_model_encodes(provider: LocalEmbeddingProvider) -> None:
    assert await loop_ticks_while_embedding(provider) > 5
