"""Server-sent events in OpenAI's streaming format, and replaying a stored completion as chunks."""

from __future__ import annotations

from typing import Any

import orjson

DONE = b"data: [DONE]\n\n"


def event(data: dict[str, Any]) -> bytes:
    """One SSE event carrying a JSON object."""
    return b"data: " + orjson.dumps(data) + b"\n\n"


def completion_to_chunks(completion: dict[str, Any], include_usage: bool) -> list[dict[str, Any]]:
    """The chunks a streamed request would have received for this completion (a cache hit replayed)."""
    base = {
        "id": completion.get("id"),
        "object": "chat.completion.chunk",
        "created": completion.get("created"),
        "model": completion.get("model"),
    }
    if completion.get("system_fingerprint") is not None:
        base["system_fingerprint"] = completion["system_fingerprint"]

    def chunk(choices: list[dict[str, Any]]) -> dict[str, Any]:
        return {**base, "choices": choices}

    chunks: list[dict[str, Any]] = []
    for choice in completion.get("choices") or []:
        index = choice.get("index", 0)
        message = choice.get("message") or {}
        chunks.append(
            chunk(
                [
                    {
                        "index": index,
                        "delta": {"role": message.get("role", "assistant"), "content": ""},
                        "finish_reason": None,
                    }
                ]
            )
        )
        if message.get("content"):
            chunks.append(chunk([{"index": index, "delta": {"content": message["content"]}, "finish_reason": None}]))
        if message.get("refusal"):
            chunks.append(chunk([{"index": index, "delta": {"refusal": message["refusal"]}, "finish_reason": None}]))
        tool_calls = message.get("tool_calls") or []
        if tool_calls:
            deltas = [{"index": i, **call} for i, call in enumerate(tool_calls)]
            chunks.append(chunk([{"index": index, "delta": {"tool_calls": deltas}, "finish_reason": None}]))
        chunks.append(chunk([{"index": index, "delta": {}, "finish_reason": choice.get("finish_reason") or "stop"}]))
    if include_usage and completion.get("usage") is not None:
        chunks.append({**base, "choices": [], "usage": completion["usage"]})
    return chunks
