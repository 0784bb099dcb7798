"""Call: what a request that no translation can carry is (the client's 400), and what an upstream answer that
cannot be translated back is (the upstream's fault: a 502), whole and streamed."""

from __future__ import annotations

from typing import Any

import pytest

from services.llm_worker.calls import Call
from services.llm_worker.providers.base import UpstreamError
from tests.unit.llm_worker.scripted import ScriptedProvider

MESSAGES_BODY: dict[str, Any] = {
    "model": "gpt-4o-mini",
    "max_tokens": 100,
    "messages": [{"role": "user", "content": "Weather in Paris?"}],
}
CHAT_BODY: dict[str, Any] = {"model": "claude-haiku-4-5", "messages": [{"role": "user", "content": "Weather?"}]}


def tool_call_completion(arguments: str) -> dict[str, Any]:
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": arguments}}
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": None, "tool_calls": [call]},
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


def assert_upstreams_fault(error: UpstreamError) -> None:
    assert (error.error.status, error.error.type, error.error.param) == (502, "upstream_error", None)
    assert error.outcome == "error_invalid"


async def test_tool_arguments_from_the_upstream_that_are_not_json_are_a_502_not_the_clients_400() -> None:
    call = Call(ScriptedProvider("openai", answer=tool_call_completion('{"city": "Par')), "anthropic", MESSAGES_BODY, 1)
    with pytest.raises(UpstreamError) as caught:
        await call.complete(None)
    assert_upstreams_fault(caught.value)
    assert "arguments" in caught.value.error.message  # says what was wrong with the answer


async def test_a_request_with_no_translation_stays_the_clients_400() -> None:
    body = {**MESSAGES_BODY, "thinking": {"type": "enabled", "budget_tokens": 1024}}
    provider = ScriptedProvider("openai", answer=tool_call_completion("{}"))
    with pytest.raises(UpstreamError) as caught:
        await Call(provider, "anthropic", body, 1).complete(None)
    assert (caught.value.error.status, caught.value.error.param) == (400, "thinking")
    assert provider.sent == []


@pytest.mark.parametrize(
    ("protocol", "upstream_protocol", "body", "events"),
    [
        (  # a tool call chunk whose index is null
            "anthropic",
            "openai",
            MESSAGES_BODY,
            [
                {"id": "c1", "model": "m", "choices": [{"index": 0, "delta": {"role": "assistant"}}]},
                {"id": "c1", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": None, "id": "x"}]}}]},
            ],
        ),
        (  # choices that are not objects
            "anthropic",
            "openai",
            MESSAGES_BODY,
            [{"id": "c1", "model": "m", "choices": ["not a choice"]}],
        ),
        (  # a content block whose index is null
            "openai",
            "anthropic",
            CHAT_BODY,
            [
                {"type": "message_start", "message": {"id": "msg_1", "model": "m", "usage": {"input_tokens": 3}}},
                {"type": "content_block_start", "index": None, "content_block": {"type": "tool_use", "id": "t"}},
            ],
        ),
    ],
)
async def test_a_stream_that_cannot_be_translated_is_a_502(
    protocol: Any, upstream_protocol: Any, body: dict[str, Any], events: list[Any]
) -> None:
    call = Call(ScriptedProvider(upstream_protocol, events=events), protocol, {**body, "stream": True}, 1)
    with pytest.raises(UpstreamError) as caught:
        _ = [part async for part in call.stream(None)]
    assert_upstreams_fault(caught.value)
