"""What the mock upstream answers on Anthropic's Messages API: deterministic Messages, their event streams,
tool use, prompt-cache usage and Anthropic-style errors.

Pure functions over the Messages payload, like `answers` for OpenAI's API. The same request always
gets the same text; a request with tools whose last user text says "call tool" gets a `tool_use`
block; a turn that returns a `tool_result` gets an answer that quotes the result (so a tool round
trip can be checked end to end); system blocks marked `cache_control` count as prompt-cache reads.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

import orjson

from services.mock_upstream.answers import (
    SNIPPET_CHARS,
    InvalidRequest,
    content_pieces,
    count_tokens,
    truncate_to_tokens,
)

MODELS = ("claude-sonnet-4-5", "claude-haiku-4-5", "claude-3-5-haiku-latest")
MODELS_CREATED_AT = "2025-01-01T00:00:00Z"

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


@dataclass(frozen=True)
class PlannedMessage:
    """The content of an answer and why it ended."""

    content: list[dict[str, Any]]
    stop_reason: str
    stop_sequence: str | None
    output_tokens: int


def validate_messages_request(body: Any) -> None:
    """Raise InvalidRequest when the payload lacks what every Messages request needs."""
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise InvalidRequest("model: Field required", "model")
    if not isinstance(body.get("max_tokens"), int) or body["max_tokens"] < 1:
        raise InvalidRequest("max_tokens: Field required (an integer of at least 1)", "max_tokens")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("messages: at least one message is required", "messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise InvalidRequest(f"messages.{i}.role: Input should be 'user' or 'assistant'", "messages")
        content = message.get("content")
        if isinstance(content, list):
            for block in content:
                if isinstance(block, dict) and block.get("type") == "text" and not block.get("text"):
                    raise InvalidRequest(f"messages.{i}: text content blocks must be non-empty", "messages")


def block_text(content: Any) -> str:
    """The text of a content string or of its text blocks (tool results' text included)."""
    if isinstance(content, str):
        return content
    texts = []
    for block in content or []:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text":
            texts.append(str(block.get("text") or ""))
        elif block.get("type") == "tool_result":
            texts.append(block_text(block.get("content")))
    return " ".join(texts)


def tool_results(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    return (
        [b for b in content if isinstance(b, dict) and b.get("type") == "tool_result"]
        if isinstance(content, list)
        else []
    )


def digest(body: dict[str, Any]) -> str:
    """Hex sha256 of what determines an answer: model, system and messages."""
    key = {"model": body["model"], "system": body.get("system"), "messages": body["messages"]}
    return hashlib.sha256(orjson.dumps(key, option=orjson.OPT_SORT_KEYS)).hexdigest()


def plan_message(body: dict[str, Any]) -> PlannedMessage:
    """The answer to a (validated) Messages request."""
    last = body["messages"][-1]
    text_asked = " ".join(block_text(last.get("content")).split())
    tools = body.get("tools")
    results = tool_results(last)
    if tools and not results and "call tool" in text_asked.lower():
        tool = tools[0] if isinstance(tools[0], dict) else {}
        block = {
            "type": "tool_use",
            "id": f"toolu_{digest(body)[:24]}",
            "name": tool.get("name") or "tool",
            "input": {"query": text_asked[:SNIPPET_CHARS]},
        }
        return PlannedMessage([block], "tool_use", None, count_tokens(orjson.dumps(block["input"]).decode()) + 8)
    if results:
        quoted = " ".join(block_text(r.get("content")) for r in results)
        text = f'Mock answer {digest(body)[:8]}: the tool returned "{quoted[:SNIPPET_CHARS]}".'
    else:
        snippet = text_asked if len(text_asked) <= SNIPPET_CHARS else text_asked[: SNIPPET_CHARS - 3] + "..."
        text = (
            f'Mock answer {digest(body)[:8]}: you asked "{snippet}". '
            "This is a deterministic reply from the mock upstream, so the same question always gets this answer."
        )
    stop_reason, stop_sequence = "end_turn", None
    for sequence in body.get("stop_sequences") or []:
        if isinstance(sequence, str) and sequence and sequence in text:
            text, stop_reason, stop_sequence = text[: text.index(sequence)], "stop_sequence", sequence
            break
    if count_tokens(text) > body["max_tokens"]:
        text, stop_reason, stop_sequence = truncate_to_tokens(text, body["max_tokens"]), "max_tokens", None
    return PlannedMessage([{"type": "text", "text": text}], stop_reason, stop_sequence, count_tokens(text))


def usage(body: dict[str, Any], plan: PlannedMessage) -> dict[str, int]:
    """Input and output tokens; system blocks marked cache_control count as read from the prompt cache."""
    system = body.get("system")
    cached = 0
    system_tokens = count_tokens(block_text(system)) if system else 0
    if isinstance(system, list) and any(isinstance(b, dict) and b.get("cache_control") for b in system):
        cached = system_tokens
    prompt = 3 + system_tokens + sum(4 + count_tokens(block_text(m.get("content"))) for m in body["messages"])
    return {
        "input_tokens": prompt - cached,
        "output_tokens": plan.output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
    }


def new_message_id() -> str:
    return f"msg_{uuid.uuid4().hex[:24]}"


def message(body: dict[str, Any], plan: PlannedMessage, message_id: str) -> dict[str, Any]:
    """A whole Message object."""
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": plan.content,
        "stop_reason": plan.stop_reason,
        "stop_sequence": plan.stop_sequence,
        "usage": usage(body, plan),
    }


def events(body: dict[str, Any], plan: PlannedMessage, message_id: str) -> list[dict[str, Any]]:
    """The events of a streamed Message, in order, as Anthropic sends them (a ping included)."""
    full_usage = usage(body, plan)
    start = {**message(body, plan, message_id), "content": [], "stop_reason": None, "stop_sequence": None}
    start["usage"] = {**full_usage, "output_tokens": 1}
    out: list[dict[str, Any]] = [{"type": "message_start", "message": start}, {"type": "ping"}]
    for index, block in enumerate(plan.content):
        if block["type"] == "text":
            out.append({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}})
            for piece in content_pieces(block["text"]):
                out.append(
                    {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": piece}}
                )
        else:
            head = {**block, "input": {}}
            out.append({"type": "content_block_start", "index": index, "content_block": head})
            arguments = orjson.dumps(block["input"]).decode()
            for start_at in range(0, len(arguments), 10):
                delta = {"type": "input_json_delta", "partial_json": arguments[start_at : start_at + 10]}
                out.append({"type": "content_block_delta", "index": index, "delta": delta})
        out.append({"type": "content_block_stop", "index": index})
    end: dict[str, Any] = {"stop_reason": plan.stop_reason, "stop_sequence": plan.stop_sequence}
    out.append({"type": "message_delta", "delta": end, "usage": {"output_tokens": plan.output_tokens}})
    out.append({"type": "message_stop"})
    return out


def sse(event: dict[str, Any]) -> bytes:
    """One server-sent event as Anthropic writes it: named after its type."""
    return b"event: " + str(event["type"]).encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"


def error_body(status: int, message: str | None = None, type_: str | None = None) -> dict[str, Any]:
    """An Anthropic-style error body."""
    kind = type_ or ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": message or f"Mock {kind} ({status})."}}


def models_list() -> dict[str, Any]:
    """GET /v1/models as Anthropic answers it."""
    data = [
        {"type": "model", "id": m, "display_name": m.replace("-", " ").title(), "created_at": MODELS_CREATED_AT}
        for m in MODELS
    ]
    return {"data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[-1]["id"]}
