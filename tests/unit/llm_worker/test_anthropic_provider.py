"""The Anthropic provider (the anthropic SDK) against the real mock upstream's Messages API: calls, streams,
errors in Anthropic's terms, the model list; and an OpenAI-format call translated through it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from services.llm_worker import anthropic_messages
from services.llm_worker.calls import Call
from services.llm_worker.providers.anthropic import AnthropicProvider
from services.llm_worker.providers.base import UpstreamError
from services.llm_worker.routing import UpstreamConfig


@pytest.fixture
async def provider(mock_url: str) -> AsyncIterator[AnthropicProvider]:
    config = UpstreamConfig("anthropic", "anthropic", mock_url, "sk-ant-test-key-123456", ("claude-*",))
    upstream = AnthropicProvider(config, timeout=10, max_retries=0)
    yield upstream
    await upstream.close()


def messages_body(content: str, **extra: Any) -> dict[str, Any]:
    return {"model": "claude-haiku-4-5", "max_tokens": 200, "messages": [{"role": "user", "content": content}], **extra}


async def test_a_message_whole_and_streamed(provider: AnthropicProvider, control: httpx.AsyncClient) -> None:
    whole = await provider.complete(messages_body("What is a cache?"))
    assert whole["type"] == "message" and whole["stop_reason"] == "end_turn"
    events = [event async for event in provider.stream(messages_body("What is a cache?"))]
    assert events[0]["type"] == "message_start" and events[-1]["type"] == "message_stop"
    assert "ping" not in {event["type"] for event in events}
    assembled = anthropic_messages.assemble(events)
    assert (
        assembled["content"] == whole["content"]
        and assembled["usage"]["output_tokens"] == whole["usage"]["output_tokens"]
    )
    stats = (await control.get("/_mock/stats")).json()
    assert (stats["messages_calls"], stats["messages_stream_calls"]) == (2, 1)
    assert stats["calls_by_key"] == {"sk-ant-test-key-123456": 2}  # sent as x-api-key


async def test_errors_keep_anthropics_status_and_type(provider: AnthropicProvider, control: httpx.AsyncClient) -> None:
    await control.post("/_mock/faults", json={"status": 529, "count": 1, "retry_after": 4})
    with pytest.raises(UpstreamError) as overloaded:
        await provider.complete(messages_body("Hi"))
    error = overloaded.value.error
    assert (error.status, error.type, error.retry_after_seconds) == (529, "overloaded_error", 4)
    await control.post("/_mock/faults", json={"status": 401, "count": 1})
    with pytest.raises(UpstreamError) as refused:
        await provider.complete(messages_body("Hi"))
    assert (refused.value.error.status, refused.value.error.type) == (502, "upstream_auth_error")
    await control.post("/_mock/faults", json={"status": 529, "count": 1, "after_chunks": 2})
    with pytest.raises(UpstreamError) as mid_stream:
        _ = [event async for event in provider.stream(messages_body("Hi"))]
    assert (mid_stream.value.error.status, mid_stream.value.outcome) == (529, "error_stream")


async def test_an_openai_format_call_through_anthropic(provider: AnthropicProvider, control: httpx.AsyncClient) -> None:
    body = {"model": "claude-haiku-4-5", "messages": [{"role": "user", "content": "What is a cache?"}]}
    call = Call(provider, "openai", body, default_max_tokens=100)
    completion = await call.complete(None)
    assert completion["object"] == "chat.completion" and completion["choices"][0]["finish_reason"] == "stop"
    chunks = [chunk async for chunk in call.stream(None)]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0
    await control.post("/_mock/faults", json={"status": 529, "count": 1})
    with pytest.raises(UpstreamError) as overloaded:
        await call.complete(None)
    assert (overloaded.value.error.status, overloaded.value.error.type) == (503, "service_unavailable")
    with pytest.raises(UpstreamError) as refused:
        await Call(provider, "openai", {**body, "n": 3}, 100).complete(None)
    assert refused.value.error.param == "n"


async def test_models_are_listed_in_openais_format(provider: AnthropicProvider) -> None:
    models = await provider.list_models()
    assert {m["id"] for m in models} >= {"claude-sonnet-4-5", "claude-haiku-4-5"}
    assert all(m["object"] == "model" and m["owned_by"] == "anthropic" and m["created"] > 0 for m in models)


async def test_embeddings_are_refused_with_a_400(provider: AnthropicProvider) -> None:
    with pytest.raises(UpstreamError) as refused:
        await provider.embed({"model": "claude-haiku-4-5", "input": "x"})
    assert (refused.value.error.status, refused.value.error.param) == (400, "model")
