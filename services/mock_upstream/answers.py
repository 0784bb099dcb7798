"""What the mock upstream answers: deterministic completions, chunks, token counts and embeddings.

Pure functions over the OpenAI request payload, so the answers can be tested without HTTP. The
same messages and model always give the same answer and different prompts give different ones,
which is what cache tests need; token counts are a rough chars/4 estimate, close enough to real
usage for cost and savings figures to look plausible.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

MODELS = ("gpt-4o-mini", "gpt-4o", "mock-llm")
MODELS_CREATED = 1_700_000_000
SYSTEM_FINGERPRINT = "fp_mock"
DEFAULT_EMBEDDING_DIM = 1536
WORDS_PER_CHUNK = 3
SNIPPET_CHARS = 200


@dataclass(frozen=True)
class Answer:
    """One choice of a completion: text or a tool call, and why it ended."""

    content: str | None
    tool_calls: list[dict[str, Any]] | None
    finish_reason: str
    completion_tokens: int


class InvalidRequest(ValueError):
    """The payload is not a chat completion request OpenAI would accept."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


# --- tokens ------------------------------------------------------------------------------------


def count_tokens(text: str) -> int:
    """A rough token count: about four characters per token, at least one for non-empty text."""
    return math.ceil(len(text) / 4) if text else 0


def message_text(message: dict[str, Any]) -> str:
    """The text of one chat message, whether `content` is a string or a list of parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def last_user_text(messages: list[dict[str, Any]]) -> str:
    """The text of the last user message (what the stats count calls by)."""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return message_text(message)
    return ""


def prompt_tokens(messages: list[dict[str, Any]]) -> int:
    """Prompt tokens as OpenAI roughly counts them: the text plus a few tokens of framing per message."""
    return 3 + sum(4 + count_tokens(message_text(m)) for m in messages if isinstance(m, dict))


# --- requests ----------------------------------------------------------------------------------


def validate_chat_request(body: Any) -> None:
    """Raise InvalidRequest when the payload lacks what every chat completion needs."""
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise InvalidRequest("you must provide a model parameter", "model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        raise InvalidRequest("'messages' must be a non-empty array of message objects", "messages")
    n = body.get("n", 1)
    if n is not None and (not isinstance(n, int) or not 1 <= n <= 128):
        raise InvalidRequest("'n' must be an integer between 1 and 128", "n")
    limit = token_limit(body)
    if limit is not None and limit < 1:
        raise InvalidRequest("max_tokens must be at least 1", "max_tokens")


def token_limit(body: dict[str, Any]) -> int | None:
    """The completion token limit the request set, if any (max_completion_tokens wins)."""
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if isinstance(value, int):
            return value
    return None


def wants_usage_chunk(body: dict[str, Any]) -> bool:
    """Whether a streamed request asked for the final usage chunk."""
    options = body.get("stream_options")
    return isinstance(options, dict) and bool(options.get("include_usage"))


# --- answers -----------------------------------------------------------------------------------


def digest(messages: list[dict[str, Any]], model: str, index: int = 0) -> str:
    """Hex sha256 of what determines an answer: messages, model and (for n > 1) the choice index."""
    key: dict[str, Any] = {"model": model, "messages": messages}
    if index:
        key["choice"] = index
    return hashlib.sha256(orjson.dumps(key, option=orjson.OPT_SORT_KEYS)).hexdigest()


def answer_text(messages: list[dict[str, Any]], model: str, index: int = 0) -> str:
    """The full deterministic answer text for a conversation."""
    snippet = " ".join(last_user_text(messages).split())
    if len(snippet) > SNIPPET_CHARS:
        snippet = snippet[: SNIPPET_CHARS - 3] + "..."
    return (
        f'Mock answer {digest(messages, model, index)[:8]}: you asked "{snippet}". '
        "This is a deterministic reply from the mock upstream, so the same question always gets this answer."
    )


def truncate_to_tokens(text: str, max_tokens: int) -> str:
    """Cut text so that it counts at most `max_tokens` tokens."""
    return text[: max_tokens * 4].rstrip()


def plan_answers(body: dict[str, Any]) -> list[Answer]:
    """The n choices to answer a (validated) chat request with."""
    messages, model = body["messages"], body["model"]
    n = body.get("n") or 1
    tools = body.get("tools")
    if tools and isinstance(tools, list) and "call tool" in last_user_text(messages).lower():
        return [_tool_call_answer(messages, model, tools[0], i) for i in range(n)]
    limit = token_limit(body)
    answers = []
    for i in range(n):
        text = answer_text(messages, model, i)
        finish_reason = "stop"
        if limit is not None and count_tokens(text) > limit:
            text, finish_reason = truncate_to_tokens(text, limit), "length"
        answers.append(Answer(text, None, finish_reason, count_tokens(text)))
    return answers


def _tool_call_answer(messages: list[dict[str, Any]], model: str, tool: Any, index: int) -> Answer:
    function = tool.get("function", {}) if isinstance(tool, dict) else {}
    name = function.get("name") or "tool"
    call = {
        "id": f"call_{digest(messages, model, index)[:24]}",
        "type": "function",
        "function": {"name": name, "arguments": "{}"},
    }
    return Answer(None, [call], "tool_calls", count_tokens(name) + 8)


def new_completion_id() -> str:
    """An id in OpenAI's format."""
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


def usage(body: dict[str, Any], answers: list[Answer]) -> dict[str, int]:
    """The usage block for a request and its answers."""
    prompt = prompt_tokens(body["messages"])
    completion = sum(a.completion_tokens for a in answers)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def completion(body: dict[str, Any], answers: list[Answer], completion_id: str, created: int) -> dict[str, Any]:
    """A whole chat.completion object."""
    choices = []
    for index, answer in enumerate(answers):
        message: dict[str, Any] = {"role": "assistant", "content": answer.content, "refusal": None}
        if answer.tool_calls is not None:
            message["tool_calls"] = answer.tool_calls
        choices.append({"index": index, "message": message, "logprobs": None, "finish_reason": answer.finish_reason})
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": body["model"],
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "choices": choices,
        "usage": usage(body, answers),
    }


def content_pieces(text: str, words: int = WORDS_PER_CHUNK) -> list[str]:
    """Split text into pieces of a few words that concatenate back to exactly the text."""
    tokens = re.findall(r"\s*\S+\s*", text) if text else []
    return ["".join(tokens[i : i + words]) for i in range(0, len(tokens), words)]


def chunks(body: dict[str, Any], answers: list[Answer], completion_id: str, created: int) -> list[dict[str, Any]]:
    """The chat.completion.chunk objects of a streamed answer, in order, as OpenAI sends them."""
    include_usage = wants_usage_chunk(body)

    def chunk(index: int, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": body["model"],
            "system_fingerprint": SYSTEM_FINGERPRINT,
            "choices": [{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }
        if include_usage:
            out["usage"] = None  # OpenAI sends an explicit null on every chunk but the last
        return out

    out: list[dict[str, Any]] = []
    for index, answer in enumerate(answers):
        out.append(chunk(index, {"role": "assistant", "content": "", "refusal": None}))
        for position, call in enumerate(answer.tool_calls or []):
            head = {**call, "index": position, "function": {"name": call["function"]["name"], "arguments": ""}}
            out.append(chunk(index, {"tool_calls": [head]}))
            arguments = {"index": position, "function": {"arguments": call["function"]["arguments"]}}
            out.append(chunk(index, {"tool_calls": [arguments]}))
        for piece in content_pieces(answer.content or ""):
            out.append(chunk(index, {"content": piece}))
        out.append(chunk(index, {}, answer.finish_reason))
    if include_usage:
        last = chunk(0, {})
        last["choices"] = []
        last["usage"] = usage(body, answers)
        out.append(last)
    return out


def sse(data: dict[str, Any] | str) -> bytes:
    """One server-sent event line as OpenAI writes it."""
    payload = data.encode() if isinstance(data, str) else orjson.dumps(data)
    return b"data: " + payload + b"\n\n"


# --- models and embeddings ---------------------------------------------------------------------


def models_list() -> dict[str, Any]:
    """GET /v1/models in OpenAI's list format."""
    return {
        "object": "list",
        "data": [{"id": m, "object": "model", "created": MODELS_CREATED, "owned_by": "mock"} for m in MODELS],
    }


def embedding_vector(text: str, model: str, dim: int) -> np.ndarray:
    """A deterministic unit-length pseudo-embedding seeded by the text and model."""
    seed = int.from_bytes(hashlib.sha256(f"{model}\x00{text}".encode()).digest()[:8], "little")
    vector = np.random.default_rng(seed).standard_normal(dim)
    return vector / np.linalg.norm(vector)


def embedding_inputs(body: Any) -> list[str]:
    """The texts of an embeddings request (token arrays are hashed by their JSON form)."""
    if not isinstance(body, dict) or "input" not in body:
        raise InvalidRequest("'input' is required", "input")
    raw = body["input"]
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list) and raw and all(isinstance(t, int) for t in raw):
        return [orjson.dumps(raw).decode()]
    if isinstance(raw, list) and raw:
        return [item if isinstance(item, str) else orjson.dumps(item).decode() for item in raw]
    raise InvalidRequest("'input' must be a non-empty string or array", "input")


def embeddings(body: dict[str, Any]) -> dict[str, Any]:
    """POST /v1/embeddings in OpenAI's format, floats or base64 (the SDK asks for base64 by default)."""
    texts = embedding_inputs(body)
    model = body.get("model") or "text-embedding-3-small"
    dim = body.get("dimensions") or DEFAULT_EMBEDDING_DIM
    if not isinstance(dim, int) or not 1 <= dim <= 8192:
        raise InvalidRequest("'dimensions' must be an integer between 1 and 8192", "dimensions")
    as_base64 = body.get("encoding_format") == "base64"
    data = []
    for index, text in enumerate(texts):
        vector = embedding_vector(text, model, dim)
        encoded: Any = (
            base64.b64encode(vector.astype("<f4").tobytes()).decode() if as_base64 else [float(x) for x in vector]
        )
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    tokens = sum(count_tokens(t) for t in texts)
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


# --- errors ------------------------------------------------------------------------------------

ERROR_DEFAULTS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("permission_error", None, "You are not allowed to access this resource."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist."),
    408: ("timeout", None, "Request timed out."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests. Please try again later."),
    500: ("server_error", None, "The server had an error while processing your request."),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", "service_unavailable", "The engine is currently overloaded, please try again later."),
    504: ("server_error", None, "Gateway timeout."),
}


def error_body(
    status: int,
    message: str | None = None,
    type_: str | None = None,
    code: str | None = None,
    param: str | None = None,
) -> dict[str, Any]:
    """An OpenAI-style error body for a status, with defaults that look like OpenAI's."""
    default_type, default_code, default_message = ERROR_DEFAULTS.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None, f"Error {status}.")
    )
    return {
        "error": {
            "message": message or default_message,
            "type": type_ or default_type,
            "param": param,
            "code": code or default_code,
        }
    }
