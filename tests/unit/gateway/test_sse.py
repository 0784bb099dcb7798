"""Replaying a stored completion as a stream gives what the streamed request would have received."""

from __future__ import annotations

import orjson

from services.gateway import sse
from services.gateway.routes.chat import cache_headers
from shared.contracts.base import CacheInfo

COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "gpt-4o-mini",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "Hello there."}, "finish_reason": "stop"},
        {"index": 1, "message": {"role": "assistant", "content": "Hi."}, "finish_reason": "stop"},
    ],
    "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
}


def text_by_choice(chunks: list[dict]) -> dict[int, str]:
    texts: dict[int, str] = {}
    for chunk in chunks:
        for choice in chunk["choices"]:
            texts[choice["index"]] = texts.get(choice["index"], "") + (choice["delta"].get("content") or "")
    return texts


def test_replay_rebuilds_every_choice_and_finish_reason() -> None:
    chunks = sse.completion_to_chunks(COMPLETION, include_usage=False)
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == "chatcmpl-1" for c in chunks)
    assert text_by_choice(chunks) == {0: "Hello there.", 1: "Hi."}
    finishes = [ch["finish_reason"] for c in chunks for ch in c["choices"] if ch["finish_reason"]]
    assert finishes == ["stop", "stop"]
    assert not any("usage" in c for c in chunks)


def test_replay_ends_with_usage_when_asked() -> None:
    chunks = sse.completion_to_chunks(COMPLETION, include_usage=True)
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == 8


def test_replay_carries_tool_calls() -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    completion = {
        **COMPLETION,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": None, "tool_calls": [call]},
                "finish_reason": "tool_calls",
            }
        ],
    }
    chunks = sse.completion_to_chunks(completion, include_usage=False)
    deltas = [ch["delta"] for c in chunks for ch in c["choices"] if "tool_calls" in ch["delta"]]
    assert deltas == [{"tool_calls": [{"index": 0, **call}]}]


def test_events_are_sse_data_lines() -> None:
    assert sse.event({"a": 1}) == b'data: {"a":1}\n\n'
    assert orjson.loads(sse.event({"a": 1})[6:]) == {"a": 1}
    assert sse.DONE == b"data: [DONE]\n\n"


def test_cache_headers() -> None:
    hit = cache_headers(CacheInfo(status="HIT", match="semantic", similarity=0.91234, key="k", age_seconds=3), "r")
    assert hit == {
        "X-Cache": "HIT",
        "X-Request-Id": "r",
        "X-Cache-Match": "semantic",
        "X-Cache-Similarity": "0.9123",
        "X-Cache-Key": "k",
        "Age": "3",
    }
    miss = cache_headers(CacheInfo(status="MISS", key="k", upstream="mock"), "r")
    assert miss["X-Cache"] == "MISS" and "Age" not in miss and miss["X-Upstream"].startswith("mock")
