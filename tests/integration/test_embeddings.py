"""POST /v1/embeddings through the real services: each input cached exactly, a half-cached batch making one
upstream call for the other half, in order, with usage and savings recorded."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import MockUpstream, wait_until
from tests.integration.stack import Stack

pytestmark = pytest.mark.integration

MODEL = "text-embedding-3-small"


def embed(client: openai.OpenAI, inputs: list[str], **kwargs: Any) -> tuple[list[list[float]], httpx.Headers]:
    raw = client.embeddings.with_raw_response.create(model=MODEL, input=inputs, **kwargs)
    result = raw.parse()
    assert [item.index for item in result.data] == list(range(len(inputs)))
    return [item.embedding for item in result.data], raw.headers


def test_a_half_cached_batch_asks_the_upstream_only_for_the_other_half(
    client: openai.OpenAI, mock: MockUpstream, stack: Stack
) -> None:
    tag = uuid.uuid4().hex[:6]
    a, b, c, d = (f"{word} {tag}" for word in ("apple", "banana", "cherry", "damson"))
    before = mock.stats()
    first, headers = embed(client, [a, b])
    assert (headers["x-cache"], headers["x-cache-inputs-cached"]) == ("MISS", "0/2")
    assert mock.stats()["embedding_inputs"] == before["embedding_inputs"] + 2

    # Storing is asynchronous: wait until both are answered from the cache.
    wait_until(lambda: embed(client, [a, b])[1]["x-cache"] == "HIT")
    calls = mock.stats()
    vectors, headers = embed(client, [c, a, d, b])
    after = mock.stats()
    assert (headers["x-cache"], headers["x-cache-inputs-cached"]) == ("MISS", "2/4")
    assert after["embedding_calls"] == calls["embedding_calls"] + 1  # one call...
    assert after["embedding_inputs"] == calls["embedding_inputs"] + 2  # ...for the two it did not hold
    assert (vectors[1], vectors[3]) == (first[0], first[1])  # the cached ones, in the request's order
    assert len(vectors[0]) == len(first[0]) and vectors[0] != vectors[2]

    wait_until(lambda: embed(client, [c, d])[1]["x-cache"] == "HIT")
    calls = mock.stats()
    again, headers = embed(client, [c, a, d, b])
    assert (headers["x-cache"], headers["x-cache-inputs-cached"]) == ("HIT", "4/4")
    assert again == vectors
    assert mock.stats()["embedding_calls"] == calls["embedding_calls"]  # answered without the upstream

    # The SDK asks for base64; floats, or other dimensions, are other entries.
    floats = httpx.post(
        f"{stack.base_url}/v1/embeddings",
        json={"model": MODEL, "input": [a], "encoding_format": "float"},
        headers=stack.auth,
        timeout=30,
    )
    assert floats.status_code == 200 and floats.headers["x-cache"] == "MISS"
    assert floats.json()["data"][0]["embedding"] == pytest.approx(first[0], rel=1e-6)
    _, headers = embed(client, [a], dimensions=64)
    assert headers["x-cache"] == "MISS"


def test_embeddings_usage_records_tokens_spent_and_saved(client: openai.OpenAI, stack: Stack) -> None:
    tag = uuid.uuid4().hex[:6]
    texts = [f"the first sentence to embed {tag}", f"a second, longer sentence to embed here {tag}"]
    embed(client, texts[:1])
    wait_until(lambda: embed(client, texts[:1])[1]["x-cache"] == "HIT")
    raw = client.embeddings.with_raw_response.create(model=MODEL, input=texts)
    assert raw.headers["x-cache-inputs-cached"] == "1/2"
    assert raw.parse().usage.prompt_tokens > 0

    def usage_rows() -> list[dict[str, Any]]:
        page = httpx.get(
            f"{stack.base_url}/api/v1/usage", params={"model": MODEL, "limit": 50}, headers=stack.auth, timeout=10
        )
        return [row for row in page.json()["data"] if row["request_id"] is not None]

    def partial_row() -> dict[str, Any] | None:
        rows = [r for r in usage_rows() if r["result"] == "miss" and r["tokens_saved"] > 0]
        return rows[0] if rows else None

    row = wait_until(partial_row, timeout=15)
    assert row["prompt_tokens"] > 0 and row["cost_usd"] > 0  # the upstream's half
    assert row["cost_saved_usd"] > 0  # the cached half
    assert any(r["result"] == "hit_exact" and r["tokens_saved"] > 0 for r in usage_rows())


def test_bad_embeddings_input_is_a_clear_400(stack: Stack) -> None:
    for body, param in [
        ({"model": MODEL, "input": []}, "input"),
        ({"model": MODEL, "input": [""]}, "input"),
        ({"model": MODEL, "input": "x", "encoding_format": "hex"}, "encoding_format"),
        ({"input": "x"}, "model"),
    ]:
        response = httpx.post(f"{stack.base_url}/v1/embeddings", json=body, headers=stack.auth, timeout=10)
        assert response.status_code == 400, body
        assert response.json()["error"]["param"].startswith(param)
    too_many = {"model": MODEL, "input": [f"text {i}" for i in range(2049)]}
    response = httpx.post(f"{stack.base_url}/v1/embeddings", json=too_many, headers=stack.auth, timeout=10)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "input" and "at most 2048 inputs" in response.json()["error"]["message"]
