"""An OpenAI chat completion request sent to Anthropic's Messages API, and the answer, stream and errors back.

- system and developer messages become `system`; consecutive messages of one role are merged (Anthropic
  wants user and assistant turns to alternate); `tool` messages become `tool_result` blocks of a user
  turn, assistant `tool_calls` become `tool_use` blocks; image parts become image blocks.
- tools and `tool_choice` become Anthropic's; `stop` becomes `stop_sequences`; `max_tokens` (or
  `max_completion_tokens`) is required by Anthropic, so a default is supplied when absent.
- What has no translation (`n` > 1, `logprobs`, penalties, `seed`, JSON modes, audio, ...) is a 400
  naming the parameter: silently dropping it would answer another question than the one asked.
- stop reasons become finish reasons, usage (with prompt-cache reads and writes) OpenAI's usage, and a
  stream of Anthropic events a stream of chat.completion.chunk objects.
"""

from __future__ import annotations

import time
from typing import Any

from services.llm_worker.translate.common import json_object, json_text, untranslatable
from shared.contracts.base import ErrorInfo

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
# Accepted and dropped: how the answer is delivered or who asked, which Anthropic has no field for
# (or the worker sets itself). `user` becomes metadata.user_id.
DELIVERY_PARAMS = frozenset({"model", "messages", "stream", "stream_options", "store", "service_tier", "metadata"})
# Parameters translated, or refused only for some values, below.
TRANSLATED_PARAMS = frozenset(
    {
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "top_k",
        "stop",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "user",
        "n",
        "logprobs",
        "presence_penalty",
        "frequency_penalty",
        "response_format",
    }
)
IMAGE_MEDIA_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})


# --- the request ---------------------------------------------------------------------------------


def to_messages_request(body: dict[str, Any], default_max_tokens: int) -> dict[str, Any]:
    """The Messages API payload for an OpenAI chat completion request (UpstreamError 400 if it has no translation)."""
    _refuse_untranslatable(body)
    system, messages = _messages(body.get("messages") or [])
    params: dict[str, Any] = {"model": body["model"], "messages": messages}
    if system:
        params["system"] = system
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    params["max_tokens"] = max_tokens if isinstance(max_tokens, int) else default_max_tokens
    for name in ("temperature", "top_p", "top_k"):
        if body.get(name) is not None:
            params[name] = body[name]
    stop = body.get("stop")
    if stop:
        params["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if body.get("tools"):
        params["tools"] = [_tool(tool, i) for i, tool in enumerate(body["tools"])]
    tool_choice = _tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
    if tool_choice is not None:
        params["tool_choice"] = tool_choice
    if isinstance(body.get("user"), str) and body["user"]:
        params["metadata"] = {"user_id": body["user"]}
    return params


def _refuse_untranslatable(body: dict[str, Any]) -> None:
    for name, value in body.items():
        if value is None or name in DELIVERY_PARAMS or name in TRANSLATED_PARAMS:
            continue
        raise untranslatable(name, "has no equivalent in Anthropic's Messages API.")
    if (body.get("n") or 1) != 1:
        raise untranslatable("n", "must be 1 for Anthropic models: the Messages API returns one answer.")
    if body.get("logprobs"):
        raise untranslatable("logprobs", "is not available from Anthropic models.")
    for name in ("presence_penalty", "frequency_penalty"):
        if body.get(name):
            raise untranslatable(name, "is not available for Anthropic models (only 0).")
    temperature = body.get("temperature")
    if isinstance(temperature, int | float) and temperature > 1:
        raise untranslatable("temperature", "must be between 0 and 1 for Anthropic models.")
    response_format = body.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type", "text") != "text":
        raise untranslatable("response_format", "other than 'text' has no equivalent in Anthropic's Messages API.")


def _messages(messages: list[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(system blocks, alternating user/assistant messages with content blocks)."""
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        role = message.get("role")
        where = f"messages[{i}]"
        if role in ("system", "developer"):
            system.extend(_text_blocks(message.get("content"), f"{where}.content"))
            continue
        if role == "user":
            blocks = _user_blocks(message.get("content"), f"{where}.content")
            anthropic_role = "user"
        elif role == "assistant":
            blocks = _assistant_blocks(message, where)
            anthropic_role = "assistant"
        elif role == "tool":
            blocks = [_tool_result(message, where)]
            anthropic_role = "user"
        else:
            raise untranslatable(f"{where}.role", f"'{role}' has no equivalent in Anthropic's Messages API.")
        if not blocks:
            continue
        if turns and turns[-1]["role"] == anthropic_role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": anthropic_role, "content": blocks})
    return system, turns


def _text_blocks(content: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks = []
    for j, part in enumerate(content or []):
        if not isinstance(part, dict) or part.get("type") != "text":
            raise untranslatable(f"{where}[{j}]", "must be a text part here.")
        blocks.append(_text_block(part))
    return blocks


def _text_block(part: dict[str, Any]) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": part.get("text") or ""}
    if part.get("cache_control"):  # Anthropic's prompt caching, as clients that know it send it
        block["cache_control"] = part["cache_control"]
    return block


def _user_blocks(content: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks = []
    for j, part in enumerate(content or []):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            blocks.append(_text_block(part))
        elif kind == "image_url":
            blocks.append(_image_block(part.get("image_url"), f"{where}[{j}]"))
        else:
            raise untranslatable(
                f"{where}[{j}].type", f"'{kind}' parts have no equivalent in Anthropic's Messages API."
            )
    return blocks


def _image_block(image_url: Any, where: str) -> dict[str, Any]:
    url = image_url.get("url") if isinstance(image_url, dict) else image_url
    if not isinstance(url, str) or not url:
        raise untranslatable(f"{where}.image_url", "must carry a URL.")
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        media_type = header[len("data:") :].split(";")[0]
        if ";base64" not in header or media_type not in IMAGE_MEDIA_TYPES:
            raise untranslatable(
                f"{where}.image_url", "must be a base64 data URL of a JPEG, PNG, GIF or WebP image for Anthropic."
            )
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _assistant_blocks(message: dict[str, Any], where: str) -> list[dict[str, Any]]:
    if message.get("function_call"):
        raise untranslatable(f"{where}.function_call", "is the deprecated form of tool calls; send 'tool_calls'.")
    content = message.get("content")
    if isinstance(content, list):  # text parts; a refusal part has no equivalent and is left out
        blocks = [_text_block(part) for part in content if isinstance(part, dict) and part.get("type") == "text"]
    else:
        blocks = _text_blocks(content, f"{where}.content")
    blocks = [block for block in blocks if block["text"]]  # Anthropic refuses empty text blocks
    for k, call in enumerate(message.get("tool_calls") or []):
        function = call.get("function") or {}
        blocks.append(
            {
                "type": "tool_use",
                "id": call.get("id") or f"toolu_{k}",
                "name": function.get("name") or "",
                "input": json_object(function.get("arguments"), f"{where}.tool_calls[{k}].function.arguments"),
            }
        )
    return blocks


def _tool_result(message: dict[str, Any], where: str) -> dict[str, Any]:
    if not message.get("tool_call_id"):
        raise untranslatable(f"{where}.tool_call_id", "is required: Anthropic answers a tool result to its call.")
    content = message.get("content")
    result: dict[str, Any] = {"type": "tool_result", "tool_use_id": message["tool_call_id"]}
    result["content"] = content if isinstance(content, str) else _text_blocks(content, f"{where}.content")
    return result


def _tool(tool: Any, i: int) -> dict[str, Any]:
    if not isinstance(tool, dict) or tool.get("type", "function") != "function":
        raise untranslatable(f"tools[{i}].type", "must be 'function' for Anthropic models.")
    function = tool.get("function") or {}
    if not function.get("name"):
        raise untranslatable(f"tools[{i}].function.name", "is required.")
    out: dict[str, Any] = {
        "name": function["name"],
        "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
    }
    if function.get("description"):
        out["description"] = function["description"]
    return out


def _tool_choice(choice: Any, parallel: Any) -> dict[str, Any] | None:
    translated: dict[str, Any] | None
    if choice is None:
        translated = None
    elif choice == "auto":
        translated = {"type": "auto"}
    elif choice == "none":
        translated = {"type": "none"}
    elif choice == "required":
        translated = {"type": "any"}
    elif isinstance(choice, dict) and choice.get("type") == "function" and (choice.get("function") or {}).get("name"):
        translated = {"type": "tool", "name": choice["function"]["name"]}
    else:
        raise untranslatable("tool_choice", "must be 'auto', 'none', 'required' or a function for Anthropic models.")
    if parallel is False:
        translated = translated or {"type": "auto"}
        if translated["type"] != "none":
            translated["disable_parallel_tool_use"] = True
    return translated


# --- the answer ----------------------------------------------------------------------------------


def finish_reason(stop_reason: Any) -> str | None:
    """OpenAI's finish_reason for Anthropic's stop_reason."""
    return FINISH_REASONS.get(stop_reason, "stop") if stop_reason is not None else None


def usage(anthropic_usage: Any) -> dict[str, Any]:
    """OpenAI's usage block for Anthropic's: the prompt includes the cache's reads and writes."""
    u = anthropic_usage if isinstance(anthropic_usage, dict) else {}
    read = int(u.get("cache_read_input_tokens") or 0)
    write = int(u.get("cache_creation_input_tokens") or 0)
    prompt = int(u.get("input_tokens") or 0) + read + write
    completion = int(u.get("output_tokens") or 0)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": read},
        "cache_read_input_tokens": read,
        "cache_creation_input_tokens": write,
    }


def completion_id(message_id: Any) -> str:
    text = str(message_id or "")
    return "chatcmpl-" + (text[len("msg_") :] if text.startswith("msg_") else text)


def to_chat_completion(message: dict[str, Any], created: int | None = None) -> dict[str, Any]:
    """The chat.completion for an Anthropic Message (thinking blocks left out)."""
    texts: list[str] = []
    tool_calls = []
    for block in message.get("content") or []:
        if block.get("type") == "text":
            texts.append(block.get("text") or "")
        elif block.get("type") == "tool_use":
            tool_calls.append(
                {
                    "id": block.get("id"),
                    "type": "function",
                    "function": {"name": block.get("name"), "arguments": json_text(block.get("input"))},
                }
            )
    reply: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None, "refusal": None}
    if tool_calls:
        reply["tool_calls"] = tool_calls
    return {
        "id": completion_id(message.get("id")),
        "object": "chat.completion",
        "created": created if created is not None else int(time.time()),
        "model": message.get("model"),
        "choices": [
            {"index": 0, "message": reply, "logprobs": None, "finish_reason": finish_reason(message.get("stop_reason"))}
        ],
        "usage": usage(message.get("usage")),
    }


class ChunksFromEvents:
    """Turns the events of a streamed Message into chat.completion.chunk dicts, one event at a time.

    The last chunk is always the usage-only one (`choices: []`), as OpenAI sends it when asked to:
    the worker needs the usage, and drops the chunk for clients that did not ask for it.
    """

    def __init__(self, created: int | None = None) -> None:
        self.created = created if created is not None else int(time.time())
        self.id = "chatcmpl-"
        self.model: Any = None
        self.usage: dict[str, Any] = {}
        self.tool_index: dict[int, int] = {}  # content block index -> tool call index
        self.no_arguments_yet: set[int] = set()  # tool blocks that have had no input text

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }

    def feed(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        """The chunks one event amounts to (often none)."""
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message") or {}
            self.id = completion_id(message.get("id"))
            self.model = message.get("model")
            self.usage = dict(message.get("usage") or {})
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            block = event.get("content_block") or {}
            if block.get("type") != "tool_use":
                return []
            block_index = int(event.get("index", 0))
            index = self.tool_index.setdefault(block_index, len(self.tool_index))
            self.no_arguments_yet.add(block_index)
            head = {"index": index, "id": block.get("id"), "type": "function"}
            head["function"] = {"name": block.get("name"), "arguments": ""}
            return [self._chunk({"tool_calls": [head]})]
        if kind == "content_block_delta":
            delta = event.get("delta") or {}
            if delta.get("type") == "text_delta":
                return [self._chunk({"content": delta.get("text") or ""})]
            if delta.get("type") == "input_json_delta":
                block_index = int(event.get("index", 0))
                if delta.get("partial_json"):
                    self.no_arguments_yet.discard(block_index)
                return [self._arguments(block_index, delta.get("partial_json") or "")]
            return []  # thinking and its signature: OpenAI's format has no place for them
        if kind == "content_block_stop":
            return self._empty_arguments([int(event.get("index", 0))])
        if kind == "message_delta":
            self.usage.update({k: v for k, v in (event.get("usage") or {}).items() if v is not None})
            stop_reason = (event.get("delta") or {}).get("stop_reason")
            chunks = self._empty_arguments(sorted(self.no_arguments_yet))  # blocks the stream never stopped
            return chunks + ([self._chunk({}, finish_reason(stop_reason))] if stop_reason is not None else [])
        if kind == "message_stop":
            return [{**self._chunk({}), "choices": [], "usage": usage(self.usage)}]
        return []

    def _arguments(self, block_index: int, text: str) -> dict[str, Any]:
        arguments = {"index": self.tool_index.get(block_index, 0), "function": {"arguments": text}}
        return self._chunk({"tool_calls": [arguments]})

    def _empty_arguments(self, block_indexes: list[int]) -> list[dict[str, Any]]:
        """A tool call that had no input text gets "{}", as in a whole answer: "" is not JSON to its client."""
        ended = [i for i in block_indexes if i in self.no_arguments_yet]
        self.no_arguments_yet.difference_update(ended)
        return [self._arguments(i, "{}") for i in ended]


# --- errors --------------------------------------------------------------------------------------

OPENAI_ERROR_TYPES = {
    "invalid_request_error": "invalid_request_error",
    "not_found_error": "invalid_request_error",
    "request_too_large": "invalid_request_error",
    "rate_limit_error": "rate_limit_error",
    "api_error": "server_error",
    "overloaded_error": "service_unavailable",
}
OVERLOADED_RETRY_AFTER_SECONDS = 5.0


def error_for_openai_client(error: ErrorInfo) -> ErrorInfo:
    """An Anthropic upstream's error as an OpenAI client expects it.

    Anthropic's 529 `overloaded_error` has no place in HTTP's or OpenAI's vocabulary: it becomes a
    503 with a Retry-After (the upstream's, else a few seconds), which OpenAI's SDKs retry.
    """
    if error.type not in OPENAI_ERROR_TYPES:
        return error  # the proxy's own (upstream_auth_error, upstream_timeout, ...)
    update: dict[str, Any] = {"type": OPENAI_ERROR_TYPES[error.type]}
    if error.status == 529 or error.type == "overloaded_error":
        update.update(status=503, code="overloaded")
        update["retry_after_seconds"] = error.retry_after_seconds or OVERLOADED_RETRY_AFTER_SECONDS
    elif error.type == "not_found_error":
        update["code"] = "model_not_found"
    elif error.type == "rate_limit_error":
        update["code"] = "rate_limit_exceeded"
    elif error.type == "request_too_large":
        update["code"] = "request_too_large"
    return error.model_copy(update=update)
