"""What both directions of translation share: the refusal of what has no translation, and JSON helpers."""

from __future__ import annotations

from typing import Any

import orjson

from services.llm_worker.providers.base import UpstreamError, invalid_request


def untranslatable(param: str, why: str) -> UpstreamError:
    """A 400 naming the parameter that the target API has no equivalent for."""
    return invalid_request(f"'{param}' {why}", param=param, code="unsupported_parameter")


def json_object(text: Any, param: str) -> dict[str, Any]:
    """A tool call's arguments (a JSON object as a string) as the object; 400 naming `param` if not one."""
    if not isinstance(text, str) or not text.strip():
        return {}
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise untranslatable(param, "is not a JSON object, which Anthropic needs for a tool call's input.") from None
    if not isinstance(value, dict):
        raise untranslatable(param, "is not a JSON object, which Anthropic needs for a tool call's input.")
    return value


def json_text(value: Any) -> str:
    """A tool call's input as OpenAI's `arguments` string."""
    return orjson.dumps(value if value is not None else {}).decode()


def text_of_blocks(content: Any) -> str:
    """The text of a string or of a list of text parts/blocks (others ignored)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)
        )
    return ""
