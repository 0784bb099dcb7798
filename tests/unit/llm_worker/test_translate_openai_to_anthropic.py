"""OpenAI-format requests to Anthropic's Messages API and back: requests, answers, streams, errors."""

from __future__ import annotations

import json
from typing import Any

import pytest

from services.gateway.anthropic_sse import message_to_events  # a Message's events, as Anthropic streams them
from services.llm_worker import anthropic_messages, completions
from services.llm_worker.providers.base import UpstreamError
from services.llm_worker.translate.openai_to_anthropic import (
    ChunksFromEvents,
    error_for_openai_client,
    to_chat_completion,
    to_messages_request,
)
from shared.contracts.base import ErrorInfo


def chat(*messages: dict[str, Any], **params: Any) -> dict[str, Any]:
    return {"model": "claude-haiku-4-5", "messages": list(messages), **params}


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


def test_system_and_developer_messages_become_system_and_max_tokens_is_supplied() -> None:
    body = chat({"role": "system", "content": "Be brief."}, {"role": "developer", "content": "Use French."}, user("Hi"))
    params = to_messages_request(body, default_max_tokens=1234)
    assert params["system"] == [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Use French."}]
    assert params["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]
    assert params["max_tokens"] == 1234
    assert to_messages_request(chat(user("Hi"), max_tokens=50), 1234)["max_tokens"] == 50
    assert to_messages_request(chat(user("Hi"), max_completion_tokens=60), 1234)["max_tokens"] == 60


def test_parameters_stop_user_and_cache_control() -> None:
    system = {
        "role": "system",
        "content": [{"type": "text", "text": "Long rules", "cache_control": {"type": "ephemeral"}}],
    }
    body = chat(system, user("Hi"), stop="END", temperature=0.3, top_p=0.9, user="u-1", stream=True)
    params = to_messages_request(body, 100)
    assert params["stop_sequences"] == ["END"]
    assert (params["temperature"], params["top_p"]) == (0.3, 0.9)
    assert params["metadata"] == {"user_id": "u-1"}
    assert params["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert "stream" not in params  # the provider decides
    assert to_messages_request(chat(user("Hi"), stop=["a", "b"]), 100)["stop_sequences"] == ["a", "b"]


def test_images_become_image_blocks() -> None:
    parts = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
    ]
    blocks = to_messages_request(chat(user(parts)), 100)["messages"][0]["content"]
    assert blocks[1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
    }
    assert blocks[2] == {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}
    with pytest.raises(UpstreamError) as refused:
        to_messages_request(chat(user([{"type": "image_url", "image_url": {"url": "data:image/bmp;base64,AA"}}])), 100)
    assert refused.value.error.param == "messages[0].content[0].image_url"


def test_tools_tool_choice_tool_calls_and_tool_results() -> None:
    tool = {
        "type": "function",
        "function": {"name": "get_weather", "description": "Weather.", "parameters": {"type": "object"}},
    }
    call = {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    body = chat(
        user("Weather in Paris and Rome?"),
        {"role": "assistant", "content": None, "tool_calls": [call, {**call, "id": "toolu_2"}]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": "25C"},
        user("Thanks"),
        tools=[tool],
        tool_choice="required",
        parallel_tool_calls=False,
    )
    params = to_messages_request(body, 100)
    assert params["tools"] == [{"name": "get_weather", "input_schema": {"type": "object"}, "description": "Weather."}]
    assert params["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    assistant, results = params["messages"][1], params["messages"][2]
    assert assistant["content"][0] == {
        "type": "tool_use",
        "id": "toolu_1",
        "name": "get_weather",
        "input": {"city": "Paris"},
    }
    # Both results in one user turn (Anthropic wants turns to alternate), the user's text after them.
    assert [b["type"] for b in results["content"]] == ["tool_result", "tool_result", "text"]
    assert results["content"][1] == {"type": "tool_result", "tool_use_id": "toolu_2", "content": "25C"}
    assert len(params["messages"]) == 3
    named = {"type": "function", "function": {"name": "get_weather"}}
    assert to_messages_request(chat(user("x"), tool_choice=named), 1)["tool_choice"] == {
        "type": "tool",
        "name": "get_weather",
    }
    assert to_messages_request(chat(user("x"), tool_choice="none"), 1)["tool_choice"] == {"type": "none"}


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"n": 2}, "n"),
        ({"logprobs": True}, "logprobs"),
        ({"top_logprobs": 2}, "top_logprobs"),
        ({"presence_penalty": 0.5}, "presence_penalty"),
        ({"seed": 7}, "seed"),
        ({"logit_bias": {"1": 2}}, "logit_bias"),
        ({"temperature": 1.5}, "temperature"),
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"audio": {"voice": "alloy"}}, "audio"),
    ],
)
def test_what_has_no_translation_is_a_400_naming_it(params: dict[str, Any], param: str) -> None:
    with pytest.raises(UpstreamError) as refused:
        to_messages_request(chat(user("Hi"), **params), 100)
    assert (refused.value.error.status, refused.value.error.param) == (400, param)
    assert param in refused.value.error.message


def test_defaults_of_untranslatable_parameters_pass() -> None:
    body = chat(
        user("Hi"), n=1, logprobs=False, presence_penalty=0, frequency_penalty=0.0, response_format={"type": "text"}
    )
    assert to_messages_request(body, 100)["messages"]


def test_bad_tool_arguments_and_unknown_roles_are_400s() -> None:
    bad = {"id": "t", "type": "function", "function": {"name": "f", "arguments": "not json"}}
    with pytest.raises(UpstreamError) as refused:
        to_messages_request(chat(user("x"), {"role": "assistant", "tool_calls": [bad]}), 1)
    assert refused.value.error.param == "messages[1].tool_calls[0].function.arguments"
    with pytest.raises(UpstreamError):
        to_messages_request(chat({"role": "function", "name": "f", "content": "x"}), 1)
    with pytest.raises(UpstreamError):
        to_messages_request(chat(user([{"type": "input_audio", "input_audio": {}}])), 1)


MESSAGE = {
    "id": "msg_01abc",
    "type": "message",
    "role": "assistant",
    "model": "claude-haiku-4-5",
    "content": [
        {"type": "thinking", "thinking": "hmm", "signature": "s"},
        {"type": "text", "text": "Let me check."},
        {"type": "tool_use", "id": "toolu_9", "name": "get_weather", "input": {"city": "Paris"}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 10,
        "output_tokens": 20,
        "cache_read_input_tokens": 100,
        "cache_creation_input_tokens": 5,
    },
}


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"), ("tool_use", "tool_calls")],
)
def test_stop_reasons_become_finish_reasons(stop_reason: str, finish_reason: str) -> None:
    completion = to_chat_completion({**MESSAGE, "stop_reason": stop_reason}, created=1)
    assert completion["choices"][0]["finish_reason"] == finish_reason


def test_a_message_becomes_a_chat_completion_with_tool_calls_and_cache_usage() -> None:
    completion = to_chat_completion(MESSAGE, created=1)
    assert completion["id"] == "chatcmpl-01abc" and completion["object"] == "chat.completion"
    message = completion["choices"][0]["message"]
    assert message["content"] == "Let me check."
    assert message["tool_calls"] == [
        {"id": "toolu_9", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}
    ]
    assert completion["usage"] == {
        "prompt_tokens": 115,
        "completion_tokens": 20,
        "total_tokens": 135,
        "prompt_tokens_details": {"cached_tokens": 100},
        "cache_read_input_tokens": 100,
        "cache_creation_input_tokens": 5,
    }


def test_a_stream_of_events_becomes_chunks_that_assemble_to_the_same_completion() -> None:
    message = {**MESSAGE, "content": MESSAGE["content"][1:]}
    chunks = ChunksFromEvents(created=1)
    out = [chunk for event in [*message_to_events(message), {"type": "ping"}] for chunk in chunks.feed(event)]
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == "chatcmpl-01abc" for c in out)
    assert out[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert out[-1]["choices"] == [] and out[-1]["usage"]["prompt_tokens"] == 115  # the usage chunk
    assembled = completions.assemble(out)
    whole = to_chat_completion(message, created=1)
    assert assembled["choices"][0]["message"]["content"] == whole["choices"][0]["message"]["content"]
    tool_call = assembled["choices"][0]["message"]["tool_calls"][0]
    assert tool_call["id"] == "toolu_9" and json.loads(tool_call["function"]["arguments"]) == {"city": "Paris"}
    assert assembled["choices"][0]["finish_reason"] == "tool_calls"
    assert assembled["usage"]["completion_tokens"] == 20
    assert completions.for_client(out[-1], client_wants_usage=False) is None


def test_streamed_tool_calls_without_input_have_the_arguments_of_an_empty_object() -> None:
    def tool(index: int, name: str) -> dict[str, Any]:
        block = {"type": "tool_use", "id": f"toolu_{index}", "name": name, "input": {}}
        return {"type": "content_block_start", "index": index, "content_block": block}

    events = [
        {"type": "message_start", "message": {"id": "msg_1", "model": "claude-x", "usage": {"input_tokens": 9}}},
        tool(0, "get_time"),
        {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": ""}},
        {"type": "content_block_stop", "index": 0},
        tool(1, "list_files"),  # no delta at all
        {"type": "content_block_stop", "index": 1},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 4}},
        {"type": "message_stop"},
    ]
    chunks = ChunksFromEvents(created=1)
    assembled = completions.assemble([chunk for event in events for chunk in chunks.feed(event)])
    calls = assembled["choices"][0]["message"]["tool_calls"]
    assert [(c["function"]["name"], c["function"]["arguments"]) for c in calls] == [
        ("get_time", "{}"),
        ("list_files", "{}"),
    ]  # as to_chat_completion has them: clients json.loads the arguments
    assert (
        to_chat_completion({**MESSAGE, "content": [tool(0, "get_time")["content_block"]]})["choices"][0]["message"][
            "tool_calls"
        ][0]["function"]["arguments"]
        == "{}"
    )


def test_anthropic_errors_become_openai_errors() -> None:
    overloaded = error_for_openai_client(ErrorInfo(type="overloaded_error", message="Overloaded", status=529))
    assert (overloaded.status, overloaded.type, overloaded.retry_after_seconds) == (503, "service_unavailable", 5.0)
    kept = error_for_openai_client(ErrorInfo(type="overloaded_error", message="x", status=529, retry_after_seconds=9))
    assert kept.retry_after_seconds == 9
    limited = error_for_openai_client(
        ErrorInfo(type="rate_limit_error", message="x", status=429, retry_after_seconds=2)
    )
    assert (limited.status, limited.code, limited.retry_after_seconds) == (429, "rate_limit_exceeded", 2)
    missing = error_for_openai_client(ErrorInfo(type="not_found_error", message="model: x", status=404))
    assert (missing.status, missing.type, missing.code) == (404, "invalid_request_error", "model_not_found")
    own = ErrorInfo(type="upstream_auth_error", message="refused", status=502)
    assert error_for_openai_client(own) == own


def test_anthropic_answers_are_cached_by_the_same_rules() -> None:
    assert anthropic_messages.is_cacheable({**MESSAGE, "content": [], "stop_reason": "end_turn"}, False) == (True, None)
    assert anthropic_messages.is_cacheable({**MESSAGE, "stop_reason": "stop_sequence", "content": []}, False)[0]
    assert anthropic_messages.is_cacheable({**MESSAGE, "content": [], "stop_reason": "max_tokens"}, False) == (
        False,
        "stop_reason_max_tokens",
    )
    assert anthropic_messages.is_cacheable(MESSAGE, cache_tool_calls=False) == (False, "tool_calls")
    assert anthropic_messages.is_cacheable(MESSAGE, cache_tool_calls=True) == (True, None)
