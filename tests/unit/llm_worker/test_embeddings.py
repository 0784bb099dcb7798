"""Embeddings in the LLM worker: it is sent only the inputs the cache did not hold, and answers with their vectors
at their places in the client's request (the gateway adds the cached ones)."""

from __future__ import annotations

import time

import pytest

from services.llm_worker import embeddings
from shared.contracts.completions import EmbeddingsLookup, EmbeddingsRequest
from shared.pricing import PriceBook


def request(inputs: object, lookup: EmbeddingsLookup | None = None, **body: object) -> EmbeddingsRequest:
    now = time.time()
    count = len(inputs) if isinstance(inputs, list) else 1
    return EmbeddingsRequest(
        request_id="r1",
        tenant="t",
        received_at=now,
        deadline=now + 10,
        body={"model": "text-embedding-3-small", "input": inputs, **body},
        lookup=lookup or EmbeddingsLookup(keys=[f"k{i}" for i in range(count)]),
    )


def test_token_shares_add_up_to_the_batch() -> None:
    assert embeddings.split_tokens(["aa", "aaaa", "aa"], 8) == [2, 4, 2]
    shares = embeddings.split_tokens(["a", "b", "c"], 10)
    assert sum(shares) == 10 and sorted(shares) == [3, 3, 4]
    assert embeddings.split_tokens([[1, 2, 3], "text"], 7) == [3, 4]  # a token array counts exactly
    assert embeddings.split_tokens(["x"], 0) == [0]


def test_the_inputs_of_a_half_cached_batch_are_answered_at_their_places() -> None:
    # Inputs 0 and 2 of ["a", "b", "c", "d"]; 1 and 3 (3 and 5 tokens) were cached and went to the gateway.
    lookup = EmbeddingsLookup(keys=["k0", "k2"], indexes=[0, 2], inputs_cached=2, tokens_saved=8)
    req = request(["a", "c"], lookup)
    upstream = {
        "object": "list",
        "model": "text-embedding-3-small",
        "data": [{"index": 1, "embedding": [0.5, 0.5]}, {"index": 0, "embedding": [0.2, 0.8]}],
        "usage": {"prompt_tokens": 4, "total_tokens": 4},
    }
    fetched = embeddings.fetched(req, upstream)
    response = embeddings.response(req, fetched)
    assert [(d["index"], d["embedding"]) for d in response["data"]] == [(0, [0.2, 0.8]), (2, [0.5, 0.5])]
    assert response["usage"] == {"prompt_tokens": 4, "total_tokens": 4}  # the gateway adds the cached 8
    assert fetched.tokens == [2, 2]
    event = embeddings.store_event(req, fetched)
    assert event is not None and [(i.key, i.embedding, i.tokens) for i in event.items] == [
        ("k0", [0.2, 0.8], 2),
        ("k2", [0.5, 0.5], 2),
    ]
    usage = embeddings.usage_event(req, PriceBook(), fetched.tokens)
    assert (usage.result, usage.prompt_tokens, usage.tokens_saved) == ("miss", 4, 8)
    assert usage.cost_usd > 0 and usage.cost_saved_usd == pytest.approx(usage.cost_usd * 2)
    info = embeddings.cache_info(req, None)
    assert (info.status, info.inputs_cached, info.inputs) == ("MISS", 2, 4)


def test_an_upstream_answering_the_wrong_number_of_vectors_is_refused() -> None:
    req = request(["a", "b"])
    with pytest.raises(ValueError, match="2 inputs"):
        embeddings.fetched(req, {"data": [{"index": 0, "embedding": [1.0]}], "usage": {"prompt_tokens": 1}})


def test_no_store_and_a_single_input() -> None:
    req = request("just one")
    fetched = embeddings.fetched(req, {"data": [{"index": 0, "embedding": [1.0]}], "usage": {"prompt_tokens": 2}})
    assert embeddings.response(req, fetched)["data"] == [{"object": "embedding", "index": 0, "embedding": [1.0]}]
    assert embeddings.store_event(req, fetched) is not None
    no_store = req.model_copy(update={"controls": req.controls.model_copy(update={"store": False})})
    assert embeddings.store_event(no_store, fetched) is None
