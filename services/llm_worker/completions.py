"""Pure functions over OpenAI completion payloads: assemble a streamed answer, decide what may be cached.

A streamed miss is forwarded chunk by chunk but stored as one chat.completion, so the cache
can answer the next request (streamed or not) from it.
"""

from __future__ import annotations

from typing import Any

TOOL_CALL_FINISH_REASONS = frozenset({"tool_calls", "function_call"})


def assemble(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """Rebuild the chat.completion a list of chat.completion.chunk dicts amounts to.

    Content is concatenated per choice index, tool calls are merged by their index (argument
    fragments concatenated), and usage comes from the usage chunk (choices == []).
    """
    completion: dict[str, Any] = {"id": None, "object": "chat.completion", "created": None, "model": None}
    choices: dict[int, _ChoiceBuilder] = {}
    usage: dict[str, Any] | None = None
    for chunk in chunks:
        for key in ("id", "created", "model", "system_fingerprint", "service_tier"):
            if chunk.get(key) is not None:
                completion[key] = chunk[key]
        if chunk.get("usage"):
            usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            index = choice.get("index", 0)
            choices.setdefault(index, _ChoiceBuilder(index)).add(choice)
    completion["choices"] = [choices[i].build() for i in sorted(choices)]
    if usage is not None:
        completion["usage"] = usage
    return completion


class _ChoiceBuilder:
    """Accumulates the deltas of one choice."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.role = "assistant"
        self.content: list[str] | None = None
        self.refusal: list[str] | None = None
        self.tool_calls: dict[int, dict[str, Any]] = {}
        self.function_call: dict[str, str] | None = None
        self.finish_reason: str | None = None
        self.logprobs: dict[str, list[Any]] | None = None

    def add(self, choice: dict[str, Any]) -> None:
        delta = choice.get("delta") or {}
        if delta.get("role"):
            self.role = delta["role"]
        if delta.get("content") is not None:
            self.content = [*(self.content or []), delta["content"]]
        if delta.get("refusal") is not None:
            self.refusal = [*(self.refusal or []), delta["refusal"]]
        for call in delta.get("tool_calls") or []:
            self._add_tool_call(call)
        if delta.get("function_call"):
            self._add_function_call(delta["function_call"])
        if choice.get("finish_reason") is not None:
            self.finish_reason = choice["finish_reason"]
        logprobs = choice.get("logprobs")
        if logprobs:
            self.logprobs = self.logprobs or {}
            for key, items in logprobs.items():
                if isinstance(items, list):
                    self.logprobs.setdefault(key, []).extend(items)

    def _add_tool_call(self, call: dict[str, Any]) -> None:
        merged = self.tool_calls.setdefault(call.get("index", len(self.tool_calls)), {"function": {}})
        for key in ("id", "type"):
            if call.get(key):
                merged[key] = call[key]
        function = call.get("function") or {}
        if function.get("name"):
            merged["function"]["name"] = function["name"]
        if function.get("arguments") is not None:
            merged["function"]["arguments"] = merged["function"].get("arguments", "") + function["arguments"]

    def _add_function_call(self, call: dict[str, Any]) -> None:
        self.function_call = self.function_call or {"name": "", "arguments": ""}
        if call.get("name"):
            self.function_call["name"] = call["name"]
        if call.get("arguments"):
            self.function_call["arguments"] += call["arguments"]

    def build(self) -> dict[str, Any]:
        content = "".join(self.content) if self.content is not None else None
        message: dict[str, Any] = {
            "role": self.role,
            # A tool-call answer carries content null, as in a non-streamed completion.
            "content": None if self.tool_calls and not content else content,
            "refusal": "".join(self.refusal) if self.refusal is not None else None,
        }
        if self.tool_calls:
            message["tool_calls"] = [
                {"type": "function", **call, "function": {"arguments": "", **call["function"]}}
                for _, call in sorted(self.tool_calls.items())
            ]
        if self.function_call is not None:
            message["function_call"] = self.function_call
        return {"index": self.index, "message": message, "logprobs": self.logprobs, "finish_reason": self.finish_reason}


def has_tool_calls(choice: dict[str, Any]) -> bool:
    """Whether a choice asks the caller to run tools."""
    message = choice.get("message") or {}
    return bool(message.get("tool_calls") or message.get("function_call")) or (
        choice.get("finish_reason") in TOOL_CALL_FINISH_REASONS
    )


def is_cacheable(completion: dict[str, Any], cache_tool_calls: bool) -> tuple[bool, str | None]:
    """Whether a completion may be stored, and if not, why (a short reason for logs and metrics).

    Only whole answers are stored: every choice must have finished with "stop" (a cut-off,
    filtered or unfinished answer is not one to repeat). Tool-call answers depend on the
    caller's tools and state, so they are stored only when `cache_tool_calls` allows it.
    """
    choices = completion.get("choices")
    if not choices:
        return False, "no_choices"
    for choice in choices:
        finish_reason = choice.get("finish_reason")
        if has_tool_calls(choice):
            if not cache_tool_calls:
                return False, "tool_calls"
            if finish_reason in TOOL_CALL_FINISH_REASONS or finish_reason == "stop":
                continue
        if finish_reason != "stop":
            return False, f"finish_reason_{finish_reason or 'none'}"
    return True, None


def usage_tokens(completion: dict[str, Any]) -> tuple[int, int]:
    """(prompt_tokens, completion_tokens) from a completion's usage (0, 0 when it has none)."""
    usage = completion.get("usage") or {}
    return int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)


def is_usage_only(chunk: dict[str, Any]) -> bool:
    """Whether a chunk is the final usage-only chunk that stream_options.include_usage adds."""
    return not chunk.get("choices") and chunk.get("usage") is not None


def for_client(chunk: dict[str, Any], client_wants_usage: bool) -> dict[str, Any] | None:
    """The chunk as the client should see it: without the usage we asked for on its behalf (None: drop it)."""
    if client_wants_usage:
        return chunk
    if is_usage_only(chunk):
        return None
    if "usage" in chunk:
        return {key: value for key, value in chunk.items() if key != "usage"}
    return chunk
