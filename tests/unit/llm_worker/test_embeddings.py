"""Embeddings in the LLM worker: only the missing inputs go upstream, the answer comes back whole and in order."""

from __future__ import annotations

import time

import pytest

from services.llm_worker import embeddings
from shared.contracts import CachedEmbedding, EmbeddingsLookup, EmbeddingsRequest
from shared.pricing import PriceBook


def request(inputs: object, cached: list[CachedEmbedding], **body: object) -> EmbeddingsRequest:
    now = time.time()
    return EmbeddingsRequest(
        request_id="r1",
        tenant="t",
        received_at=now,
        deadline=now + 10,
        body={"model": "text-embedding-3-small", "input": inputs, **body},
        lookup=EmbeddingsLookup(
            keys=["k0", "k1", "k2", "k3"][: len(inputs) if isinstance(inputs, list) else 1], cached=cached
        ),
    )


def test_token_shares_add_up_to_the_batch() -> None:
    assert embeddings.split_tokens(["aa", "aaaa", "aa"], 8) == [2, 4, 2]
    shares = embeddings.split_tokens(["a", "b", "c"], 10)
    assert sum(shares) == 10 and sorted(shares) == [3, 3, 4]
    assert embeddings.split_tokens([[1, 2, 3], "text"], 7) == [3, 4]  # a token array counts exactly
    assert embeddings.split_tokens(["x"], 0) == [0]


def test_half_cached_batch_sends_the_rest_and_merges_in_order() -> None:
    cached = [
        CachedEmbedding(index=1, embedding=[1.0, 0.0], tokens=3),
        CachedEmbedding(index=3, embedding=[0.0, 1.0], tokens=5),
    ]
    req = request(["a", "b", "c", "d"], cached)
    missing = embeddings.missing_indexes(req)
    assert missing == [0, 2]
    assert embeddings.upstream_payload(req, missing)["input"] == ["a", "c"]
    upstream = {
        "object": "list",
        "model": "text-embedding-3-small",
        "data": [{"index": 1, "embedding": [0.5, 0.5]}, {"index": 0, "embedding": [0.2, 0.8]}],
        "usage": {"prompt_tokens": 4, "total_tokens": 4},
    }
    response, new_tokens = embeddings.merge(req, missing, upstream)
    assert [d["embedding"] for d in response["data"]] == [[0.2, 0.8], [1.0, 0.0], [0.5, 0.5], [0.0, 1.0]]
    assert [d["index"] for d in response["data"]] == [0, 1, 2, 3]
    assert response["usage"] == {"prompt_tokens": 12, "total_tokens": 12}  # every input's tokens
    assert new_tokens == [2, 2]
    event = embeddings.store_event(req, response, missing, new_tokens)
    assert event is not None and [(i.key, i.embedding, i.tokens) for i in event.items] == [
        ("k0", [0.2, 0.8], 2),
        ("k2", [0.5, 0.5], 2),
    ]
    usage = embeddings.usage_event(req, PriceBook(), new_tokens)
    assert (usage.result, usage.prompt_tokens, usage.tokens_saved) == ("miss", 4, 8)
    assert usage.cost_usd > 0 and usage.cost_saved_usd == pytest.approx(usage.cost_usd * 2)
    info = embeddings.cache_info(req, None)
    assert (info.status, info.inputs_cached, info.inputs) == ("MISS", 2, 4)


def test_an_upstream_answering_the_wrong_number_of_vectors_is_refused() -> None:
    req = request(["a", "b"], [])
    with pytest.raises(ValueError, match="2 inputs"):
        embeddings.merge(req, [0, 1], {"data": [{"index": 0, "embedding": [1.0]}], "usage": {"prompt_tokens": 1}})


def test_no_store_and_a_single_input() -> None:
    req = request("just one", [])
    assert embeddings.upstream_payload(req, [0])["input"] == ["just one"]
    no_store = req.model_copy(update={"controls": req.controls.model_copy(update={"store": False})})
    response, tokens = embeddings.merge(
        no_store, [0], {"data": [{"index": 0, "embedding": [1.0]}], "usage": {"prompt_tokens": 2}}
    )
    assert embeddings.store_event(no_store, response, [0], tokens) is None
