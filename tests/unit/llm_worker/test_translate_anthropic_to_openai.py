"""Messages requests to an OpenAI-compatible upstream and back: requests, answers, streams, errors."""

from __future__ import annotations

from typing import Any

import pytest

from services.gateway.anthropic_sse import message_to_events
from services.llm_worker import anthropic_messages
from services.llm_worker.providers.base import UpstreamError
from services.llm_worker.translate.anthropic_to_openai import (
    EventsFromChunks,
    error_for_anthropic_client,
    to_chat_request,
    to_message,
)
from services.mock_upstream import answers
from shared.contracts.base import ErrorInfo


def messages_body(*messages: dict[str, Any], **params: Any) -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "max_tokens": 100, "messages": list(messages), **params}


def test_system_parameters_and_metadata() -> None:
    body = messages_body(
        {"role": "user", "content": "Hi"},
        system=[{"type": "text", "text": "Be brief."}],
        stop_sequences=["END"],
        temperature=0.2,
        metadata={"user_id": "u-1"},
        stream=True,
    )
    payload = to_chat_request(body)
    assert payload["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    # max_completion_tokens: OpenAI's reasoning models refuse max_tokens (vLLM and the mock read both)
    assert (payload["max_completion_tokens"], payload["stop"], payload["temperature"]) == (100, ["END"], 0.2)
    assert "max_tokens" not in payload
    assert payload["user"] == "u-1" and "stream" not in payload
    assert answers.token_limit(payload) == 100  # the mock upstream honours it


def test_tool_use_and_tool_results_become_tool_calls_and_tool_messages() -> None:
    body = messages_body(
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "18C"}]},
                {"type": "text", "text": "And tomorrow?"},
            ],
        },
        tools=[{"name": "get_weather", "description": "Weather.", "input_schema": {"type": "object"}}],
        tool_choice={"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
    )
    payload = to_chat_request(body)
    assistant, tool, follow_up = payload["messages"][1:]
    assert assistant["content"] == "Checking."
    assert assistant["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city":"Paris"}'}
    assert tool == {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"}
    assert follow_up == {"role": "user", "content": [{"type": "text", "text": "And tomorrow?"}]}
    assert payload["tools"][0]["function"] == {
        "name": "get_weather",
        "parameters": {"type": "object"},
        "description": "Weather.",
    }
    assert payload["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert payload["parallel_tool_calls"] is False
    assert (
        to_chat_request(messages_body({"role": "user", "content": "x"}, tool_choice={"type": "any"}))["tool_choice"]
        == "required"
    )


def test_images_become_image_parts() -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}
    payload = to_chat_request(messages_body({"role": "user", "content": [image]}))
    assert payload["messages"][0]["content"] == [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    ]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (
            messages_body({"role": "user", "content": "x"}, thinking={"type": "enabled", "budget_tokens": 1000}),
            "thinking",
        ),
        (
            messages_body({"role": "user", "content": [{"type": "document", "source": {}}]}),
            "messages[0].content[0].type",
        ),
        (
            messages_body(
                {"role": "user", "content": "x"}, tools=[{"type": "web_search_20250305", "name": "web_search"}]
            ),
            "tools[0]",
        ),
        (messages_body({"role": "user", "content": "x"}, top_k=5), "top_k"),  # api.openai.com refuses it
        (  # OpenAI's tool messages carry text only: the image would be dropped and the answer cached
            messages_body(
                {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "shot", "input": {}}]},
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "t1",
                            "content": [
                                {"type": "text", "text": "The screenshot:"},
                                {
                                    "type": "image",
                                    "source": {"type": "base64", "media_type": "image/png", "data": "AA"},
                                },
                            ],
                        }
                    ],
                },
            ),
            "messages[1].content[0].content[1]",
        ),
    ],
)
def test_what_has_no_translation_is_a_400_naming_it(body: dict[str, Any], param: str) -> None:
    with pytest.raises(UpstreamError) as refused:
        to_chat_request(body)
    assert (refused.value.error.status, refused.value.error.param) == (400, param)


def test_a_completion_becomes_a_message() -> None:
    completion = {
        "id": "chatcmpl-xyz",
        "object": "chat.completion",
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Sure.",
                    "tool_calls": [
                        {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {
            "prompt_tokens": 30,
            "completion_tokens": 5,
            "total_tokens": 35,
            "prompt_tokens_details": {"cached_tokens": 10},
        },
    }
    message = to_message(completion)
    assert message["id"] == "msg_xyz" and message["type"] == "message" and message["role"] == "assistant"
    assert message["content"] == [
        {"type": "text", "text": "Sure."},
        {"type": "tool_use", "id": "call_1", "name": "f", "input": {"a": 1}},
    ]
    assert message["stop_reason"] == "tool_use"
    assert message["usage"] == {
        "input_tokens": 20,
        "output_tokens": 5,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 10,
    }
    for finish, stop in (("stop", "end_turn"), ("length", "max_tokens"), ("content_filter", "refusal")):
        assert (
            to_message({**completion, "choices": [{**completion["choices"][0], "finish_reason": finish}]})[
                "stop_reason"
            ]
            == stop
        )


def test_a_refusal_is_passed_on_as_text_with_stop_reason_refusal_and_not_cached() -> None:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return {"id": "chatcmpl-r", "object": "chat.completion.chunk", "model": "gpt-4o", "choices": [choice]}

    chunks = [
        chunk({"role": "assistant", "content": None, "refusal": ""}),
        chunk({"refusal": "I can't help "}),
        chunk({"refusal": "with that."}),
        chunk({}, "stop"),
        {"id": "chatcmpl-r", "model": "gpt-4o", "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 5}},
    ]
    translator = EventsFromChunks()
    events = [event for c in chunks for event in translator.feed(c)] + translator.finish_events()
    message = anthropic_messages.assemble(events)
    assert message["content"] == [{"type": "text", "text": "I can't help with that."}]
    assert message["stop_reason"] == "refusal"
    assert anthropic_messages.is_cacheable(message, cache_tool_calls=True) == (False, "stop_reason_refusal")

    whole = {
        "id": "chatcmpl-r",
        "model": "gpt-4o",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": None, "refusal": "I can't help with that."},
                "finish_reason": "stop",
            }
        ],
    }
    refused = to_message(whole)
    assert (refused["content"], refused["stop_reason"]) == (message["content"], "refusal")


def test_a_stream_of_chunks_becomes_the_events_of_a_message() -> None:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "call tool please"}], "stream": True}
    body["tools"] = [{"type": "function", "function": {"name": "lookup"}}]
    body["stream_options"] = {"include_usage": True}
    planned = answers.plan_answers(body)
    chunks = answers.chunks(body, planned, "chatcmpl-abc", 1)
    text_body = {**body, "messages": [{"role": "user", "content": "Tell me a story"}], "tools": None}
    text_chunks = answers.chunks(text_body, answers.plan_answers(text_body), "chatcmpl-def", 1)
    for source, expected_stop in ((chunks, "tool_use"), (text_chunks, "end_turn")):
        translator = EventsFromChunks()
        events = [event for chunk in source for event in translator.feed(chunk)] + translator.finish_events()
        kinds = [event["type"] for event in events]
        assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
        assert kinds.count("content_block_start") == kinds.count("content_block_stop")
        message = anthropic_messages.assemble(events)
        assert message["stop_reason"] == expected_stop
        assert message["usage"]["output_tokens"] > 0 and message["usage"]["input_tokens"] > 0
    tool_use = anthropic_messages.assemble(events_for(chunks))["content"][0]
    assert tool_use["type"] == "tool_use" and tool_use["name"] == "lookup" and tool_use["input"] == {}


def events_for(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    translator = EventsFromChunks()
    return [event for chunk in chunks for event in translator.feed(chunk)] + translator.finish_events()


def test_a_stored_message_replays_as_events_that_assemble_to_it() -> None:
    message = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-haiku-4-5",
        "content": [
            {"type": "text", "text": "Hello there."},
            {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": [1, 2]}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 12,
            "output_tokens": 7,
            "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 0,
        },
    }
    assert anthropic_messages.assemble(message_to_events(message)) == message


def test_openai_errors_become_anthropic_error_types() -> None:
    for status, kind in (
        (400, "invalid_request_error"),
        (404, "not_found_error"),
        (429, "rate_limit_error"),
        (500, "api_error"),
    ):
        error = error_for_anthropic_client(ErrorInfo(type="server_error", message="x", status=status))
        assert (error.status, error.type) == (status, kind)
    own = ErrorInfo(type="upstream_auth_error", message="refused", status=502)
    assert error_for_anthropic_client(own) == own
