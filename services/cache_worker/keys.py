"""What identifies a request: the exact key, the semantic partition, and the text that gets embedded.

Pure functions. The exact key is a SHA-256 over a canonical JSON of everything that changes the
answer; the partition key groups requests between which a semantic hit is allowed at all (same
tenant, namespace, model, system prompts, output-affecting parameters, earlier turns and
embedding model); the prompt text is what the embedding compares.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

import orjson

# Request fields that do not change the answer: how it is delivered, or who asked.
DELIVERY_FIELDS = frozenset({"stream", "stream_options", "user", "metadata", "store", "service_tier"})
SYSTEM_ROLES = frozenset({"system", "developer"})
# Number parameters OpenAI reads as floats: 1 and 1.0 are the same temperature.
FLOAT_PARAMS = frozenset({"temperature", "top_p", "presence_penalty", "frequency_penalty"})
# What a message holds besides the fields compared by meaning (its role and its text).
MESSAGE_TEXT_FIELDS = frozenset({"role", "content"})


def canonical_json(value: Any) -> bytes:
    """JSON with sorted keys and no whitespace: the same request always gives the same bytes."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def answer_affecting(body: dict[str, Any]) -> dict[str, Any]:
    """The request without the fields that don't change the answer, in one spelling.

    An explicit null is the parameter's default, as if left out, and a float parameter with a whole
    value is written as the integer: `"temperature": 0` and `0.0` are one request. (Integers, not
    floats: JavaScript clients always send `0`, and so the keys of entries stored before this rule
    stay what they were for them.)
    """
    return {
        k: int(v) if k in FLOAT_PARAMS and type(v) is float and v.is_integer() else v
        for k, v in body.items()
        if k not in DELIVERY_FIELDS and v is not None
    }


def exact_key(tenant: str, namespace: str, body: dict[str, Any], protocol: str = "openai") -> str:
    """SHA-256 (hex) of the tenant, the namespace, the API format and every answer-affecting field."""
    material = {"tenant": tenant, "namespace": namespace, "request": answer_affecting(body)}
    _add_protocol(material, protocol)
    return hashlib.sha256(canonical_json(material)).hexdigest()


def _add_protocol(material: dict[str, Any], protocol: str) -> None:
    """Put a non-OpenAI API format in a key's material: an answer in one format never answers the other.
    (Only then, so the keys of OpenAI-format entries stay what they were.)"""
    if protocol != "openai":
        material["protocol"] = protocol


def text_of(content: Any) -> str | None:
    """The text of a message's content (a string, or the text parts of a list); None if it has non-text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                return None
            texts.append(part["text"])
        return "\n".join(texts)
    return None


def semantic_prompt(body: dict[str, Any]) -> str | None:
    """The text to embed: the last message, when it is a text-only user message; else None (exact only)."""
    messages = body.get("messages") or []
    if not messages or not isinstance(messages[-1], dict) or messages[-1].get("role") != "user":
        return None
    text = text_of(messages[-1].get("content"))
    if text is None or not text.strip():
        return None
    return text.strip()


CONTEXT_ROLES = frozenset({"user", "assistant"})
MAX_CONTEXT_CHARS = 1500  # the embedder reads ~256 tokens: keep the most recent turns
_FIRST_WORD = re.compile(r"^\S*\s+")


@dataclass(frozen=True)
class Conversation:
    """How a request's earlier turns take part in semantic matching.

    `context_text` (embedded and compared with its own threshold) when every earlier turn is a
    plain user or assistant text; otherwise the earlier turns are hashed into the partition, so
    only byte-identical histories can match.
    """

    context_text: str | None
    history_hash: str | None


def conversation(body: dict[str, Any]) -> Conversation:
    """The earlier turns of a chat (everything before the last message, system prompts aside)."""
    earlier = [m for m in (body.get("messages") or [])[:-1] if not _is_system(m)]
    if not earlier:
        return Conversation(context_text=None, history_hash=None)
    lines = []
    for message in earlier:
        text = text_of(message.get("content")) if isinstance(message, dict) else None
        if message.get("role") not in CONTEXT_ROLES or text is None or _beyond_text(message):
            # Tool calls, a participant's `name`, ...: compared exactly, not by meaning.
            return Conversation(context_text=None, history_hash=hashlib.sha256(canonical_json(earlier)).hexdigest())
        lines.append(f"{message['role']}: {text.strip()}")
    context = "\n".join(lines)
    if len(context) > MAX_CONTEXT_CHARS:
        # The most recent turns, from a whole word: a cut word ("2500" as "00") would read as another number.
        context = _FIRST_WORD.sub("", context[-MAX_CONTEXT_CHARS:], count=1)
    return Conversation(context_text=context, history_hash=None)


def _beyond_text(message: dict[str, Any]) -> dict[str, Any]:
    """A message's fields besides its role and text, empty ones aside (an SDK's assistant message
    sent back carries `"refusal": null`, `"tool_calls": []`)."""
    return {k: v for k, v in message.items() if k not in MESSAGE_TEXT_FIELDS and v not in (None, [], {}, "")}


def _is_system(message: Any) -> bool:
    return isinstance(message, dict) and message.get("role") in SYSTEM_ROLES


def partition_key(
    tenant: str, namespace: str, body: dict[str, Any], embedding_model: str, protocol: str = "openai"
) -> str:
    """SHA-256 (hex) of everything that must be equal for a semantic hit.

    Tenant, namespace, embedding model, every output-affecting parameter and the system prompts;
    the last message's fields besides its text (a participant's `name`: "greet me by my name" is
    another question for alice than for bob); for conversations, whether there are earlier turns
    at all, and (when they can't be compared by meaning) their exact hash. The last user message's
    wording and a plain-text history are compared by embedding instead.
    """
    request = answer_affecting(body)
    messages = request.pop("messages", [])
    history = conversation(body)
    material = {
        "tenant": tenant,
        "namespace": namespace,
        "embedding_model": embedding_model,
        "params": request,  # model, temperature, max_tokens, tools, response_format, ...
        "system": [m for m in messages if _is_system(m)],
        "history": "none"
        if history.context_text is None and history.history_hash is None
        else (history.history_hash or "by_meaning"),
    }
    last = _beyond_text(messages[-1]) if messages and isinstance(messages[-1], dict) else {}
    if last:
        # Only when present, so the partitions of plain messages stay what they were before.
        material["last_message"] = last
    _add_protocol(material, protocol)
    return hashlib.sha256(canonical_json(material)).hexdigest()
