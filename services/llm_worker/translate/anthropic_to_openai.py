"""A Messages API request sent to an OpenAI-compatible upstream, and the answer, stream and errors back.

- `system` becomes a system message; `tool_result` blocks become `tool` messages (before the user's
  text of the same turn), `tool_use` blocks assistant `tool_calls`; image blocks become image parts.
- `stop_sequences` becomes `stop`, tools and `tool_choice` OpenAI's, `metadata.user_id` the `user`;
  `max_tokens` is sent as `max_completion_tokens` (OpenAI's reasoning models refuse `max_tokens`;
  vLLM reads either). `top_k` is refused: OpenAI's API has none and api.openai.com rejects it.
- What has no translation (`thinking`, documents, server tools, images in a tool result, ...) is a 400
  naming it.
- finish reasons become stop reasons, usage Anthropic's (cached prompt tokens as cache reads), and a
  stream of chat.completion.chunk objects the event sequence of a streamed Message. A `refusal`
  (OpenAI's safety refusal, whole or in deltas) becomes text with stop reason `refusal`, which is
  passed on and never cached.
"""

from __future__ import annotations

import uuid
from typing import Any

from services.llm_worker.translate.common import json_object, json_text, text_of_blocks, untranslatable
from shared.contracts.base import ErrorInfo

STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "function_call": "tool_use"}
STOP_REASONS["content_filter"] = "refusal"
# Accepted and dropped (`stream` the worker sets; `service_tier` has no OpenAI-compatible equivalent).
DELIVERY_PARAMS = frozenset({"model", "messages", "stream", "service_tier"})
TRANSLATED_PARAMS = frozenset(
    {"system", "max_tokens", "temperature", "top_p", "stop_sequences", "tools", "tool_choice", "metadata"}
)


# --- the request ---------------------------------------------------------------------------------


def to_chat_request(body: dict[str, Any]) -> dict[str, Any]:
    """The OpenAI chat completion payload for a Messages request (UpstreamError 400 if it has no translation)."""
    for name, value in body.items():
        if value is not None and name not in DELIVERY_PARAMS and name not in TRANSLATED_PARAMS:
            raise untranslatable(name, "has no equivalent in OpenAI's chat completions API.")
    messages: list[dict[str, Any]] = []
    system = body.get("system")
    if system:
        messages.append({"role": "system", "content": text_of_blocks(system)})
    for i, message in enumerate(body.get("messages") or []):
        messages.extend(_messages(message, f"messages[{i}]"))
    payload: dict[str, Any] = {
        "model": body["model"],
        "messages": messages,
        "max_completion_tokens": body["max_tokens"],
    }
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            payload[name] = body[name]
    if body.get("stop_sequences"):
        payload["stop"] = list(body["stop_sequences"])
    if body.get("tools"):
        payload["tools"] = [_tool(tool, i) for i, tool in enumerate(body["tools"])]
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        payload.update(_tool_choice(choice))
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("user_id"), str):
        payload["user"] = metadata["user_id"]
    return payload


def _messages(message: dict[str, Any], where: str) -> list[dict[str, Any]]:
    role, content = message.get("role"), message.get("content")
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    if role == "assistant":
        return [_assistant(content or [], where)]
    tool_messages: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for j, block in enumerate(content or []):
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            parts.append({"type": "text", "text": block.get("text") or ""})
        elif kind == "image":
            parts.append({"type": "image_url", "image_url": {"url": _image_url(block, f"{where}.content[{j}]")}})
        elif kind == "tool_result":
            text = _tool_result_text(block.get("content"), f"{where}.content[{j}]")
            if block.get("is_error"):
                text = f"Error: {text}"
            tool_messages.append({"role": "tool", "tool_call_id": block.get("tool_use_id"), "content": text})
        else:
            raise untranslatable(f"{where}.content[{j}].type", f"'{kind}' blocks have no equivalent in OpenAI's API.")
    user = [{"role": "user", "content": parts}] if parts else []
    return tool_messages + user


def _tool_result_text(content: Any, where: str) -> str:
    """A tool result's text: OpenAI's tool messages carry no images or documents, so those are refused."""
    if isinstance(content, list):
        for k, part in enumerate(content):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind != "text":
                raise untranslatable(
                    f"{where}.content[{k}]", f"'{kind}' blocks in a tool result have no equivalent in OpenAI's API."
                )
    return text_of_blocks(content)


def _assistant(content: list[Any], where: str) -> dict[str, Any]:
    texts, calls = [], []
    for j, block in enumerate(content):
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            texts.append(block.get("text") or "")
        elif kind == "tool_use":
            function = {"name": block.get("name"), "arguments": json_text(block.get("input"))}
            calls.append({"id": block.get("id"), "type": "function", "function": function})
        elif kind not in ("thinking", "redacted_thinking"):  # the model's own reasoning: not sent back
            raise untranslatable(f"{where}.content[{j}].type", f"'{kind}' blocks have no equivalent in OpenAI's API.")
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        message["tool_calls"] = calls
    return message


def _image_url(block: dict[str, Any], where: str) -> str:
    source = block.get("source") or {}
    if source.get("type") == "base64":
        return f"data:{source.get('media_type')};base64,{source.get('data')}"
    if source.get("type") == "url" and source.get("url"):
        return str(source["url"])
    raise untranslatable(f"{where}.source", "must be a base64 or URL image source.")


def _tool(tool: Any, i: int) -> dict[str, Any]:
    if not isinstance(tool, dict) or tool.get("type") not in (None, "custom") or not tool.get("name"):
        raise untranslatable(
            f"tools[{i}]", "must be a custom tool (name and input_schema): server tools run at Anthropic."
        )
    function: dict[str, Any] = {"name": tool["name"], "parameters": tool.get("input_schema") or {"type": "object"}}
    if tool.get("description"):
        function["description"] = tool["description"]
    return {"type": "function", "function": function}


def _tool_choice(choice: dict[str, Any]) -> dict[str, Any]:
    kind = choice.get("type")
    translated: dict[str, Any]
    if kind == "auto":
        translated = {"tool_choice": "auto"}
    elif kind == "any":
        translated = {"tool_choice": "required"}
    elif kind == "none":
        translated = {"tool_choice": "none"}
    elif kind == "tool" and choice.get("name"):
        translated = {"tool_choice": {"type": "function", "function": {"name": choice["name"]}}}
    else:
        raise untranslatable("tool_choice", "must be auto, any, none or a named tool.")
    if choice.get("disable_parallel_tool_use"):
        translated["parallel_tool_calls"] = False
    return translated


# --- the answer ----------------------------------------------------------------------------------


def stop_reason(finish_reason: Any) -> str | None:
    """Anthropic's stop_reason for OpenAI's finish_reason."""
    return STOP_REASONS.get(finish_reason, "end_turn") if finish_reason is not None else None


def usage(openai_usage: Any) -> dict[str, Any]:
    """Anthropic's usage block for OpenAI's: cached prompt tokens are cache reads, not input tokens."""
    u = openai_usage if isinstance(openai_usage, dict) else {}
    details = u.get("prompt_tokens_details")
    read = int(details.get("cached_tokens") or 0) if isinstance(details, dict) else 0
    return {
        "input_tokens": max(int(u.get("prompt_tokens") or 0) - read, 0),
        "output_tokens": int(u.get("completion_tokens") or 0),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": read,
    }


def message_id(completion_id: Any) -> str:
    text = str(completion_id or uuid.uuid4().hex)
    return "msg_" + (text[len("chatcmpl-") :] if text.startswith("chatcmpl-") else text)


def to_message(completion: dict[str, Any]) -> dict[str, Any]:
    """The Anthropic Message for a chat.completion (its first choice: a Messages request asks for one)."""
    choices = completion.get("choices") or [{}]
    choice = choices[0]
    reply = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    if reply.get("content"):
        content.append({"type": "text", "text": reply["content"]})
    if reply.get("refusal"):
        content.append({"type": "text", "text": reply["refusal"]})
    for k, call in enumerate(reply.get("tool_calls") or []):
        function = call.get("function") or {}
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id"),
                "name": function.get("name"),
                "input": json_object(
                    function.get("arguments"), f"choices[0].message.tool_calls[{k}].function.arguments"
                ),
            }
        )
    return {
        "id": message_id(completion.get("id")),
        "type": "message",
        "role": "assistant",
        "model": completion.get("model"),
        "content": content,
        "stop_reason": "refusal" if reply.get("refusal") else stop_reason(choice.get("finish_reason")),
        "stop_sequence": None,
        "usage": usage(completion.get("usage")),
    }


class EventsFromChunks:
    """Turns chat.completion.chunk dicts into the events of a streamed Message, one chunk at a time.

    OpenAI sends the usage after the finish reason, so `message_delta` and `message_stop` come from
    `finish()`, once the upstream's stream has ended.
    """

    def __init__(self) -> None:
        self.started = False
        self.open_block: tuple[int, str] | None = None  # (index, "text" | "tool_use")
        self.blocks = 0
        self.tool_blocks: dict[int, int] = {}  # tool call index -> content block index
        self.finish: str | None = None
        self.refused = False  # the model refused (OpenAI's refusal deltas)
        self.usage: dict[str, Any] = {}

    def feed(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        """The events one chunk amounts to."""
        events: list[dict[str, Any]] = []
        if not self.started:
            self.started = True
            message: dict[str, Any] = {
                "id": message_id(chunk.get("id")),
                "type": "message",
                "role": "assistant",
                "model": chunk.get("model"),
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 0, "output_tokens": 0},
            }
            events.append({"type": "message_start", "message": message})
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in (chunk.get("choices") or [])[:1]:
            delta = choice.get("delta") or {}
            for text, is_refusal in ((delta.get("content"), False), (delta.get("refusal"), True)):
                if not text:
                    continue
                self.refused = self.refused or is_refusal
                if self.open_block is None or self.open_block[1] != "text":
                    events += self._open({"type": "text", "text": ""}, "text")
                events.append(self._delta({"type": "text_delta", "text": text}))
            for call in delta.get("tool_calls") or []:
                events += self._tool_call(call)
            if choice.get("finish_reason") is not None:
                self.finish = choice["finish_reason"]
                events += self._close()
        return events

    def finish_events(self) -> list[dict[str, Any]]:
        """The closing events, once the chunks have ended."""
        final_usage = usage(self.usage)
        reason = "refusal" if self.refused else stop_reason(self.finish or "stop")
        delta = {"stop_reason": reason, "stop_sequence": None}
        return [
            *self._close(),
            {"type": "message_delta", "delta": delta, "usage": final_usage},
            {"type": "message_stop"},
        ]

    def _tool_call(self, call: dict[str, Any]) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        index = int(call.get("index", 0))
        function = call.get("function") or {}
        if index not in self.tool_blocks:
            block: dict[str, Any] = {
                "type": "tool_use",
                "id": call.get("id"),
                "name": function.get("name"),
                "input": {},
            }
            events += self._open(block, "tool_use")
            self.tool_blocks[index] = self.blocks - 1
        if function.get("arguments"):
            event = self._delta({"type": "input_json_delta", "partial_json": function["arguments"]})
            events.append({**event, "index": self.tool_blocks[index]})
        return events

    def _open(self, block: dict[str, Any], kind: str) -> list[dict[str, Any]]:
        events = self._close()
        self.open_block = (self.blocks, kind)
        events.append({"type": "content_block_start", "index": self.blocks, "content_block": block})
        self.blocks += 1
        return events

    def _close(self) -> list[dict[str, Any]]:
        if self.open_block is None:
            return []
        index, _ = self.open_block
        self.open_block = None
        return [{"type": "content_block_stop", "index": index}]

    def _delta(self, delta: dict[str, Any]) -> dict[str, Any]:
        index = self.open_block[0] if self.open_block is not None else 0
        return {"type": "content_block_delta", "index": index, "delta": delta}


# --- errors --------------------------------------------------------------------------------------

ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    529: "overloaded_error",
}


def error_for_anthropic_client(error: ErrorInfo) -> ErrorInfo:
    """An OpenAI-compatible upstream's error as an Anthropic client expects it (its status kept)."""
    if error.type.startswith("upstream_"):
        return error  # the proxy's own (upstream_auth_error, upstream_timeout, ...)
    return error.model_copy(update={"type": ANTHROPIC_ERROR_TYPES.get(error.status, "api_error")})
