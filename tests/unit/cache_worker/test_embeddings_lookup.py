"""The cache worker's embeddings lookup: a partly cached batch sends the LLM worker only the inputs it must fetch,
and the cached vectors straight to the gateway, so no vector crosses the broker twice."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from services.cache_worker.embeddings import EmbeddingsCache, embedding_key, stored_answer
from services.cache_worker.entries import CachedAnswer
from services.cache_worker.handlers import CacheHandlers
from shared.contracts.completions import REPLY_ADAPTER, CompletionReply, EmbeddingsCached, EmbeddingsRequest
from shared.pricing import PriceBook
from shared.topology import Topology
from tests.unit.fakes import ReplyChannel

TOPOLOGY = Topology("unit-cache")
BODY = {"model": "text-embedding-3-small", "input": ["a", "b", "c", "d"]}
CACHED = {"b": [0.25, 0.75], "d": [0.125, 0.875]}


@dataclass
class Exchange:
    published: list[tuple[str, bytes]] = field(default_factory=list)

    async def publish(self, message: Any, routing_key: str, **_: Any) -> None:
        self.published.append((routing_key, message.body))


class ExactStore:
    """Holds the vectors of CACHED."""

    def __init__(self) -> None:
        self.answers = {
            embedding_key("t", "default", BODY, text): stored_answer(
                embedding_key("t", "default", BODY, text), "text-embedding-3-small", vector, 4, time.time()
            )
            for text, vector in CACHED.items()
        }

    async def get(self, key: str) -> CachedAnswer | None:
        return self.answers.get(key)


class Usage:
    async def publish(self, event: Any) -> None:
        return None


class Hits:
    def record(self, tenant: str, key: str) -> None:
        return None


def handlers(exchange: Exchange) -> CacheHandlers:
    worker = SimpleNamespace(fast_channel=ReplyChannel(exchange), topology=TOPOLOGY)
    cache = EmbeddingsCache(ExactStore(), 60)  # type: ignore[arg-type]
    return CacheHandlers(worker, None, None, None, Hits(), Usage(), PriceBook(), cache, None)  # type: ignore[arg-type]


def message(body: dict[str, Any]) -> Any:
    now = time.time()
    work = EmbeddingsRequest(request_id="e1", tenant="t", received_at=now, deadline=now + 30, body=body)
    return SimpleNamespace(body=work.model_dump_json().encode(), reply_to="gateway", correlation_id=uuid.uuid4().hex)


async def test_a_partly_cached_batch_sends_no_cached_vector_to_the_llm_worker() -> None:
    exchange = Exchange()
    await handlers(exchange).on_lookup(message(BODY))
    [forwarded] = [body for key, body in exchange.published if key == TOPOLOGY.llm_request]
    assert b"0.875" not in forwarded and b"0.25," not in forwarded  # the cached vectors stay out
    request = EmbeddingsRequest.model_validate_json(forwarded)
    assert request.lookup is not None
    assert request.body["input"] == ["a", "c"]  # only what the upstream must embed...
    assert request.lookup.indexes == [0, 2]  # ...and where each goes in the answer
    keys = [embedding_key("t", "default", BODY, text) for text in BODY["input"]]
    assert request.lookup.keys == [keys[0], keys[2]]
    assert (request.lookup.inputs_cached, request.lookup.tokens_saved) == (2, 8)

    [part] = [REPLY_ADAPTER.validate_json(body) for key, body in exchange.published if key == "gateway"]
    assert isinstance(part, EmbeddingsCached)  # the cached vectors go to the gateway, which merges
    assert [(c.index, c.embedding, c.tokens) for c in part.cached] == [(1, CACHED["b"], 4), (3, CACHED["d"], 4)]


async def test_a_batch_with_nothing_cached_goes_on_whole_and_one_all_cached_is_answered_here() -> None:
    exchange = Exchange()
    await handlers(exchange).on_lookup(message({**BODY, "input": ["x", "y"]}))
    [(key, forwarded)] = exchange.published
    request = EmbeddingsRequest.model_validate_json(forwarded)
    assert key == TOPOLOGY.llm_request and request.body["input"] == ["x", "y"] and request.lookup is not None
    assert (request.lookup.indexes, request.lookup.inputs_cached) == (None, 0)

    exchange = Exchange()
    await handlers(exchange).on_lookup(message({**BODY, "input": ["d", "b"]}))
    [(key, answer)] = exchange.published
    hit = REPLY_ADAPTER.validate_json(answer)
    assert key == "gateway" and isinstance(hit, CompletionReply) and hit.cache.status == "HIT"
    assert [d["embedding"] for d in hit.completion["data"]] == [CACHED["d"], CACHED["b"]]
