"""Server-sent events in Anthropic's streaming format (`event: <type>` then `data: <json>`), and replaying a
stored Message as the event sequence a streamed request would have received."""

from __future__ import annotations

from typing import Any

import orjson


def event(data: dict[str, Any]) -> bytes:
    """One SSE event named after its `type`, as Anthropic writes them."""
    return b"event: " + str(data.get("type", "message")).encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def error_event(error_type: str, message: str) -> bytes:
    """The event that ends a stream that failed after it began."""
    return event({"type": "error", "error": {"type": error_type, "message": message}})


def message_to_events(message: dict[str, Any]) -> list[dict[str, Any]]:
    """message_start, each content block (start, one delta, stop), message_delta, message_stop."""
    usage = dict(message.get("usage") or {})
    start = {
        **message,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {**usage, "output_tokens": 0},
    }
    events: list[dict[str, Any]] = [{"type": "message_start", "message": start}]
    for index, block in enumerate(message.get("content") or []):
        kind = block.get("type")
        if kind == "text":
            events.append(
                {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}
            )
            delta = {"type": "text_delta", "text": block.get("text") or ""}
        elif kind == "tool_use":
            head = {**block, "input": {}}
            events.append({"type": "content_block_start", "index": index, "content_block": head})
            delta = {"type": "input_json_delta", "partial_json": orjson.dumps(block.get("input") or {}).decode()}
        elif kind == "thinking":
            events.append(
                {"type": "content_block_start", "index": index, "content_block": {"type": "thinking", "thinking": ""}}
            )
            delta = {"type": "thinking_delta", "thinking": block.get("thinking") or ""}
        else:  # a block with no deltas (redacted thinking, server tool results): whole in its start
            events.append({"type": "content_block_start", "index": index, "content_block": block})
            events.append({"type": "content_block_stop", "index": index})
            continue
        events.append({"type": "content_block_delta", "index": index, "delta": delta})
        if kind == "thinking" and block.get("signature"):
            signature = {"type": "signature_delta", "signature": block["signature"]}
            events.append({"type": "content_block_delta", "index": index, "delta": signature})
        events.append({"type": "content_block_stop", "index": index})
    delta = {"stop_reason": message.get("stop_reason"), "stop_sequence": message.get("stop_sequence")}
    events.append({"type": "message_delta", "delta": delta, "usage": {"output_tokens": usage.get("output_tokens", 0)}})
    events.append({"type": "message_stop"})
    return events
