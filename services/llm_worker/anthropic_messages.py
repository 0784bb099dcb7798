"""Pure functions over Anthropic Messages answers, the counterpart of `completions` for OpenAI's format:
assemble a streamed Message from its events, decide whether it may be cached."""

from __future__ import annotations

from typing import Any

import orjson

CACHEABLE_STOP_REASONS = frozenset({"end_turn", "stop_sequence"})


def assemble(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Rebuild the Message a list of stream events amounts to (text joined, tool inputs parsed).

    ValueError (TypeError, ...) for events that do not make one: a delta for a block that never started.
    """
    message: dict[str, Any] = {"type": "message", "role": "assistant", "content": []}
    blocks: dict[int, dict[str, Any]] = {}
    partial_json: dict[int, list[str]] = {}
    for event in events:
        kind = event.get("type")
        if kind == "message_start":
            message.update({k: v for k, v in (event.get("message") or {}).items() if k != "content"})
            message["usage"] = _counts({}, (event.get("message") or {}).get("usage"))
        elif kind == "content_block_start":
            blocks[int(event.get("index", 0))] = dict(event.get("content_block") or {})
        elif kind == "content_block_delta":
            index = int(event.get("index", 0))
            block = blocks.get(index)
            if block is None:
                raise ValueError(f"a delta for content block {index}, which never started")
            delta = event.get("delta") or {}
            if delta.get("type") == "text_delta":
                block["text"] = block.get("text", "") + (delta.get("text") or "")
            elif delta.get("type") == "input_json_delta":
                if not str(block.get("type")).endswith("tool_use"):
                    raise ValueError(f"tool input for content block {index}, a {block.get('type')} block")
                partial_json.setdefault(index, []).append(delta.get("partial_json") or "")
            elif delta.get("type") == "thinking_delta":
                block["thinking"] = block.get("thinking", "") + (delta.get("thinking") or "")
            elif delta.get("type") == "signature_delta":
                block["signature"] = delta.get("signature")
        elif kind == "message_delta":
            message.update(event.get("delta") or {})
            message["usage"] = _counts(message.get("usage") or {}, event.get("usage"))
    for index, parts in partial_json.items():
        text = "".join(parts)
        try:
            blocks[index]["input"] = orjson.loads(text) if text else {}
        except orjson.JSONDecodeError:
            blocks[index]["input"] = {}
            blocks[index]["invalid_input_json"] = text
    message["content"] = [blocks[i] for i in sorted(blocks)]
    return message


def _counts(usage: dict[str, Any], update: Any) -> dict[str, Any]:
    """`usage` updated with the fields of `update` that are set: message_delta's counts are nullable, and a
    null there means "not reported", not zero (it would wipe message_start's input tokens, and the cost)."""
    fields = update.items() if isinstance(update, dict) else ()
    return {**usage, **{name: value for name, value in fields if value is not None}}


def has_tool_use(message: dict[str, Any]) -> bool:
    """Whether the answer asks the caller to run tools."""
    return message.get("stop_reason") == "tool_use" or any(
        isinstance(block, dict) and block.get("type") == "tool_use" for block in message.get("content") or []
    )


def is_cacheable(message: dict[str, Any], cache_tool_calls: bool) -> tuple[bool, str | None]:
    """Whether a Message may be stored, and if not, why: the rules of `completions.is_cacheable`, in
    Anthropic's stop reasons (`end_turn` and `stop_sequence` are OpenAI's "stop")."""
    if not isinstance(message.get("content"), list):
        return False, "no_content"
    if any(isinstance(block, dict) and "invalid_input_json" in block for block in message["content"]):
        return False, "invalid_tool_input"
    stop_reason = message.get("stop_reason")
    if has_tool_use(message):
        return (True, None) if cache_tool_calls else (False, "tool_calls")
    if stop_reason not in CACHEABLE_STOP_REASONS:
        return False, f"stop_reason_{stop_reason or 'none'}"
    return True, None
