"""The embed handler with a fake message and reply channel: results, errors as data, unreadable requests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from services.embedder.batching import embed_batcher
from services.embedder.handlers import EmbedHandler
from shared.contracts.embedder import EmbedRequest, EmbedResult
from tests.unit.embedder.fakes import FakeProvider, vector_of
from tests.unit.fakes import ReplyChannel


@dataclass
class FakeMessage:
    body: bytes
    reply_to: str | None = "reply.queue"
    correlation_id: str | None = "corr-1"


@dataclass
class FakeExchange:
    published: list[tuple[Any, str]] = field(default_factory=list)

    async def publish(self, message: Any, routing_key: str) -> None:
        self.published.append((message, routing_key))


class FakeChannel(ReplyChannel):
    def __init__(self) -> None:
        super().__init__(FakeExchange())


def handler_with(provider: FakeProvider) -> tuple[EmbedHandler, FakeChannel]:
    channel = FakeChannel()
    batcher = embed_batcher(provider, max_size=8)
    return EmbedHandler(batcher, provider, channel), channel  # type: ignore[arg-type]


def only_reply(channel: FakeChannel) -> tuple[dict[str, Any], Any]:
    assert len(channel.default_exchange.published) == 1
    message, routing_key = channel.default_exchange.published[0]
    assert routing_key == "reply.queue"
    assert message.correlation_id == "corr-1"
    return orjson.loads(message.body), message


async def test_replies_with_the_vectors() -> None:
    handler, channel = handler_with(FakeProvider(delay=0))

    await handler(FakeMessage(EmbedRequest(texts=["a", "bb"]).model_dump_json().encode()))  # type: ignore[arg-type]

    body, _ = only_reply(channel)
    assert body["type"] == "embeddings"
    assert body["model"] == "fake"
    assert body["dim"] == 2
    assert body["vectors"] == [vector_of("a"), vector_of("bb")]
    assert EmbedResult.model_validate(body).vectors == [vector_of("a"), vector_of("bb")]


async def test_overlong_texts_are_cut_to_the_provider_limit() -> None:
    provider = FakeProvider(delay=0)
    handler, _ = handler_with(provider)

    await handler(FakeMessage(EmbedRequest(texts=["z" * 5000]).model_dump_json().encode()))  # type: ignore[arg-type]

    assert provider.calls == [["z" * provider.max_input_chars]]


async def test_a_provider_failure_is_replied_as_a_503_error() -> None:
    handler, channel = handler_with(FakeProvider(delay=0, fail_on="boom"))

    await handler(FakeMessage(EmbedRequest(texts=["boom"]).model_dump_json().encode()))  # type: ignore[arg-type]

    body, _ = only_reply(channel)
    assert body["type"] == "error"
    assert body["error"]["type"] == "embedding_error"
    assert body["error"]["status"] == 503
    assert "boom" in body["error"]["message"]


@pytest.mark.parametrize("raw", [b"not json", b'{"type": "embed_request", "texts": []}', b'{"v": 2, "texts": ["a"]}'])
async def test_an_unreadable_request_raises_for_the_worker_to_dead_letter(raw: bytes) -> None:
    handler, channel = handler_with(FakeProvider(delay=0))

    with pytest.raises(ValidationError):
        await handler(FakeMessage(raw))  # type: ignore[arg-type]
    assert channel.default_exchange.published == []
