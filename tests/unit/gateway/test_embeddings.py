"""The gateway's embeddings: a partly cached batch answered in two parts (the cache worker's cached vectors, the
LLM worker's others), in either order, made one answer; and at most 2048 inputs per request."""

from __future__ import annotations

import asyncio
from typing import Any

import pydantic
import pytest
from pydantic import BaseModel

from services.gateway.errors import ApiError
from services.gateway.forwarding import whole_embeddings
from services.gateway.schemas import EmbeddingsBody
from shared.contracts.base import CacheInfo, ErrorInfo, ErrorReply
from shared.contracts.completions import CachedEmbedding, CompletionReply, EmbeddingsCached

CACHED = EmbeddingsCached(
    cached=[
        CachedEmbedding(index=1, embedding=[1.0, 0.0], tokens=3),
        CachedEmbedding(index=3, embedding="AAA", tokens=5),
    ]
)
FETCHED = CompletionReply(
    cache=CacheInfo(status="MISS", inputs_cached=2, inputs=4),
    completion={
        "object": "list",
        "model": "text-embedding-3-small",
        "data": [
            {"object": "embedding", "index": 0, "embedding": [0.2, 0.8]},
            {"object": "embedding", "index": 2, "embedding": [0.5, 0.5]},
        ],
        "usage": {"prompt_tokens": 4, "total_tokens": 4},
    },
)


def queue_of(*replies: BaseModel) -> asyncio.Queue[bytes]:
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for reply in replies:
        queue.put_nowait(reply.model_dump_json().encode())
    return queue


@pytest.mark.parametrize("cached_first", [True, False])
async def test_the_two_parts_of_a_partly_cached_batch_are_one_answer_in_order(cached_first: bool) -> None:
    first, second = (CACHED, FETCHED) if cached_first else (FETCHED, CACHED)
    answer = await whole_embeddings(first, queue_of(second), timeout=1)
    assert isinstance(answer, CompletionReply) and answer.cache == FETCHED.cache
    data = answer.completion["data"]
    assert [(d["index"], d["embedding"]) for d in data] == [
        (0, [0.2, 0.8]),
        (1, [1.0, 0.0]),
        (2, [0.5, 0.5]),
        (3, "AAA"),
    ]
    assert answer.completion["usage"] == {"prompt_tokens": 12, "total_tokens": 12}  # every input's tokens
    assert answer.completion["model"] == "text-embedding-3-small"


async def test_a_whole_answer_is_as_it_came_and_an_error_of_either_part_is_the_answer() -> None:
    whole = FETCHED.model_copy(update={"cache": CacheInfo(status="MISS", inputs_cached=0, inputs=2)})
    assert await whole_embeddings(whole, queue_of(), timeout=1) is whole
    failed = ErrorReply(error=ErrorInfo(type="upstream_error", message="bad", status=502))
    assert await whole_embeddings(failed, queue_of(CACHED), timeout=1) is failed
    assert await whole_embeddings(CACHED, queue_of(failed), timeout=1) == failed


@pytest.mark.parametrize("kept", [slice(0, 1), slice(0, 0)])  # input 2 missing; inputs 0 and 2 missing
async def test_parts_that_do_not_make_every_input_are_a_502(kept: slice) -> None:
    short = CompletionReply(
        cache=FETCHED.cache, completion={**FETCHED.completion, "data": FETCHED.completion["data"][kept]}
    )
    with pytest.raises(ApiError) as refused:
        await whole_embeddings(CACHED, queue_of(short), timeout=1)
    assert refused.value.status == 502
    cached_first_two = EmbeddingsCached(
        cached=[CachedEmbedding(index=0, embedding=[1.0]), CachedEmbedding(index=1, embedding=[0.5])]
    )
    only_the_third = CompletionReply(
        cache=FETCHED.cache,
        completion={**FETCHED.completion, "data": [{"object": "embedding", "index": 2, "embedding": [0.1]}]},
    )
    with pytest.raises(ApiError):  # the fourth input is missing at the end
        await whole_embeddings(cached_first_two, queue_of(only_the_third), timeout=1)


def test_more_than_2048_inputs_is_a_400_that_says_so() -> None:
    with pytest.raises(pydantic.ValidationError) as refused:
        EmbeddingsBody.model_validate({"model": "m", "input": ["text"] * 2049})
    [error] = refused.value.errors()
    assert error["loc"] == ("input",) and "2048" in error["msg"] and "2049" in error["msg"]
    one_long_token_array: dict[str, Any] = {"model": "m", "input": list(range(5000))}
    EmbeddingsBody.model_validate(one_long_token_array)  # one input, however many tokens
    EmbeddingsBody.model_validate({"model": "m", "input": [[1, 2]] * 2048})
