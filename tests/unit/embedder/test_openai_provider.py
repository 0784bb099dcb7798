"""The OpenAI-API provider against a tiny OpenAI-compatible /v1/embeddings server run inside the test."""

from __future__ import annotations

import base64
import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from services.embedder.providers.openai_api import OpenAIEmbeddingProvider

NATIVE_DIM = 12


def raw_vector(text: str, dim: int) -> np.ndarray:
    """A deterministic, deliberately not unit-length vector for a text."""
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
    return np.random.default_rng(seed).normal(size=dim).astype(np.float32) * 5


class FakeEmbeddingsServer:
    """Speaks just enough of the OpenAI embeddings API; records what it was sent."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.authorizations: list[str | None] = []
        self.fail = False
        self.app = FastAPI()
        self.app.post("/v1/embeddings")(self.embeddings)

    async def embeddings(self, request: Request) -> JSONResponse:
        body = await request.json()
        self.requests.append(body)
        self.authorizations.append(request.headers.get("authorization"))
        if self.fail:
            return JSONResponse({"error": {"message": "overloaded", "type": "server_error"}}, status_code=500)
        texts = [body["input"]] if isinstance(body["input"], str) else body["input"]
        if any(text == "" for text in texts):
            return JSONResponse({"error": {"message": "empty input", "type": "invalid_request_error"}}, 400)
        dim = body.get("dimensions") or NATIVE_DIM
        data = []
        for index, text in enumerate(texts):
            vector = raw_vector(text, dim)
            encoded: Any = (
                base64.b64encode(vector.tobytes()).decode()
                if body.get("encoding_format") == "base64"
                else vector.tolist()
            )
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        data.reverse()  # the provider must order by `index`, not by position
        return JSONResponse(
            {
                "object": "list",
                "model": body["model"],
                "data": data,
                "usage": {"prompt_tokens": len(texts), "total_tokens": len(texts)},
            }
        )


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[FakeEmbeddingsServer, str]]:
    fake = FakeEmbeddingsServer()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(fake.app, lifespan="off", ws="none", log_level="warning", access_log=False)
    runner = uvicorn.Server(config)
    thread = threading.Thread(target=runner.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not runner.started:
        assert time.monotonic() < deadline, "the fake embeddings server did not start"
        time.sleep(0.01)
    yield fake, f"http://127.0.0.1:{port}/v1"
    runner.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture
def fake(server: tuple[FakeEmbeddingsServer, str]) -> FakeEmbeddingsServer:
    fake = server[0]
    fake.requests.clear()
    fake.authorizations.clear()
    fake.fail = False
    return fake


@pytest.fixture
def base_url(server: tuple[FakeEmbeddingsServer, str]) -> str:
    return server[1]


async def test_returns_unit_vectors_of_the_discovered_dim_in_order(fake: FakeEmbeddingsServer, base_url: str) -> None:
    provider = OpenAIEmbeddingProvider("text-embedding-3-small", api_key="sk-test", base_url=base_url)
    await provider.start()
    texts = ["first text", "second text", "third text"]

    vectors = await provider.embed(texts)

    assert provider.dim == NATIVE_DIM
    assert provider.loaded
    assert provider.model == "text-embedding-3-small"
    matrix = np.asarray(vectors)
    assert matrix.shape == (3, NATIVE_DIM)
    assert np.allclose(np.linalg.norm(matrix, axis=1), 1.0)
    for text, vector in zip(texts, matrix, strict=True):
        expected = raw_vector(text, NATIVE_DIM)
        assert np.allclose(vector, expected / np.linalg.norm(expected), atol=1e-6)
    assert fake.requests[-1]["model"] == "text-embedding-3-small"
    assert fake.requests[-1]["input"] == texts
    assert "dimensions" not in fake.requests[-1]
    assert fake.authorizations[-1] == "Bearer sk-test"
    await provider.close()
    assert not provider.loaded


async def test_configured_dimensions_are_asked_for_and_need_no_probe(fake: FakeEmbeddingsServer, base_url: str) -> None:
    provider = OpenAIEmbeddingProvider("text-embedding-3-large", api_key="sk-test", base_url=base_url, dimensions=8)
    await provider.start()
    assert fake.requests == []  # no probe: the dimension is known

    vectors = await provider.embed(["one", "two"])

    assert provider.dim == 8
    assert [len(v) for v in vectors] == [8, 8]
    assert np.allclose(np.linalg.norm(np.asarray(vectors), axis=1), 1.0)
    assert fake.requests[-1]["dimensions"] == 8
    await provider.close()


async def test_empty_and_overlong_texts_are_made_acceptable(fake: FakeEmbeddingsServer, base_url: str) -> None:
    provider = OpenAIEmbeddingProvider("m", base_url=base_url, dimensions=4)
    await provider.start()

    vectors = await provider.embed(["", "y" * 100_000])

    assert len(vectors) == 2
    sent = fake.requests[-1]["input"]
    assert sent[0] == " "
    assert len(sent[1]) == provider.max_input_chars
    assert fake.authorizations[-1] is not None  # a keyless self-hosted server still gets some bearer token
    await provider.close()


async def test_an_api_error_raises(fake: FakeEmbeddingsServer, base_url: str) -> None:
    provider = OpenAIEmbeddingProvider("m", api_key="sk-test", base_url=base_url, dimensions=4, max_retries=0)
    await provider.start()
    fake.fail = True

    with pytest.raises(Exception, match="overloaded"):
        await provider.embed(["anything"])
    await provider.close()
