"""Assembling streamed chunks into a completion, and deciding what may be cached."""

from __future__ import annotations

from typing import Any

import pytest

from services.llm_worker.completions import assemble, for_client, is_cacheable, usage_tokens


def chunk(choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "gpt-4o-mini",
        "choices": choices,
        **extra,
    }


def delta(index: int = 0, finish_reason: str | None = None, **fields: Any) -> dict[str, Any]:
    return {"index": index, "delta": fields, "logprobs": None, "finish_reason": finish_reason}


def completion(*choices: dict[str, Any]) -> dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion", "choices": list(choices)}


def choice(finish_reason: str | None, content: str | None = "hi", tool_calls: Any = None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls is not None:
        message["tool_calls"] = tool_calls
    return {"index": 0, "message": message, "finish_reason": finish_reason}


USAGE = {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}


def test_content_pieces_are_concatenated_and_usage_taken_from_the_usage_chunk() -> None:
    chunks = [
        chunk([delta(role="assistant", content="")], usage=None),
        chunk([delta(content="Hello")], usage=None),
        chunk([delta(content=", world")], usage=None),
        chunk([delta(finish_reason="stop")], usage=None),
        chunk([], usage=USAGE),
    ]
    result = assemble(chunks)
    assert result["id"] == "chatcmpl-1"
    assert result["object"] == "chat.completion"
    assert result["model"] == "gpt-4o-mini"
    assert result["created"] == 1700000000
    assert result["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello, world", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    assert result["usage"] == USAGE
    assert usage_tokens(result) == (12, 5)


def test_without_a_usage_chunk_there_is_no_usage() -> None:
    result = assemble([chunk([delta(content="x", role="assistant")]), chunk([delta(finish_reason="stop")])])
    assert "usage" not in result
    assert usage_tokens(result) == (0, 0)


def test_tool_call_argument_fragments_are_merged_by_index() -> None:
    chunks = [
        chunk([delta(role="assistant", content=None)]),
        chunk(
            [
                delta(
                    tool_calls=[
                        {
                            "index": 0,
                            "id": "call_a",
                            "type": "function",
                            "function": {"name": "weather", "arguments": ""},
                        }
                    ]
                )
            ]
        ),
        chunk([delta(tool_calls=[{"index": 0, "function": {"arguments": '{"city": '}}])]),
        chunk(
            [
                delta(
                    tool_calls=[
                        {
                            "index": 1,
                            "id": "call_b",
                            "type": "function",
                            "function": {"name": "time", "arguments": "{}"},
                        }
                    ]
                )
            ]
        ),
        chunk([delta(tool_calls=[{"index": 0, "function": {"arguments": '"Paris"}'}}])]),
        chunk([delta(finish_reason="tool_calls")]),
    ]
    message = assemble(chunks)["choices"][0]["message"]
    assert message["content"] is None
    assert message["tool_calls"] == [
        {"id": "call_a", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Paris"}'}},
        {"id": "call_b", "type": "function", "function": {"name": "time", "arguments": "{}"}},
    ]
    assert assemble(chunks)["choices"][0]["finish_reason"] == "tool_calls"


def test_two_choices_are_assembled_separately_in_index_order() -> None:
    chunks = [
        chunk([delta(1, role="assistant", content="")]),
        chunk([delta(0, role="assistant", content="")]),
        chunk([delta(0, content="first "), delta(1, content="second ")]),
        chunk([delta(1, content="answer")]),
        chunk([delta(0, content="answer")]),
        chunk([delta(0, finish_reason="stop"), delta(1, finish_reason="length")]),
        chunk([], usage=USAGE),
    ]
    choices = assemble(chunks)["choices"]
    assert [c["index"] for c in choices] == [0, 1]
    assert [c["message"]["content"] for c in choices] == ["first answer", "second answer"]
    assert [c["finish_reason"] for c in choices] == ["stop", "length"]


def test_no_chunks_make_no_choices() -> None:
    assert assemble([])["choices"] == []


@pytest.mark.parametrize(
    ("completion_", "allow_tools", "expected"),
    [
        (completion(choice("stop")), False, (True, None)),
        (completion(choice("length")), False, (False, "finish_reason_length")),
        (completion(choice("content_filter")), False, (False, "finish_reason_content_filter")),
        (completion(choice(None)), False, (False, "finish_reason_none")),
        (completion(choice("stop"), {**choice("length"), "index": 1}), False, (False, "finish_reason_length")),
        (completion(), False, (False, "no_choices")),
    ],
)
def test_only_whole_answers_are_cacheable(
    completion_: dict[str, Any], allow_tools: bool, expected: tuple[bool, str | None]
) -> None:
    assert is_cacheable(completion_, allow_tools) == expected


TOOL_CALLS = [{"id": "call_a", "type": "function", "function": {"name": "weather", "arguments": "{}"}}]


def test_tool_calls_are_not_cacheable_by_default() -> None:
    assert is_cacheable(completion(choice("tool_calls", None, TOOL_CALLS)), False) == (False, "tool_calls")


def test_tool_calls_are_cacheable_when_allowed() -> None:
    assert is_cacheable(completion(choice("tool_calls", None, TOOL_CALLS)), True) == (True, None)


def test_a_cut_off_tool_call_is_not_cacheable_even_when_allowed() -> None:
    assert is_cacheable(completion(choice("length", None, TOOL_CALLS)), True) == (False, "finish_reason_length")


def test_usage_we_asked_for_is_hidden_from_a_client_that_did_not() -> None:
    with_usage = chunk([delta(content="x")], usage=None)
    usage_only = chunk([], usage=USAGE)
    assert for_client(usage_only, client_wants_usage=False) is None
    assert "usage" not in (for_client(with_usage, client_wants_usage=False) or {})
    assert for_client(usage_only, client_wants_usage=True) == usage_only
    assert for_client(with_usage, client_wants_usage=True) == with_usage
