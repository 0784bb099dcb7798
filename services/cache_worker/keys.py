"""What identifies a request: the exact key, the semantic partition, and the text that gets embedded.

Pure functions. The exact key is a SHA-256 over a canonical JSON of everything that changes the
answer; the partition key groups requests between which a semantic hit is allowed at all (same
tenant, namespace, model, system prompts, output-affecting parameters, earlier turns and
embedding model); the prompt text is what the embedding compares.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from services.cache_worker.verifier.text import normalized

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
# How earlier turns must agree for a semantic hit (the cache worker's CONVERSATION_MATCH):
# "exact": every turn the same text once normalized (case, spaces, punctuation), part of the partition;
# "aligned": the turns aligned and judged pair by pair by the hit verifier (`verifier.conversation`).
ConversationMatch = Literal["exact", "aligned"]


@dataclass(frozen=True)
class Conversation:
    """A request's earlier turns (everything before the last message, system prompts aside).

    `turns` (role, text) when every earlier turn is a plain user or assistant text; otherwise
    `history_hash`, the exact hash of the raw history: tool calls, a participant's `name` or an
    image are compared byte for byte, never by meaning.
    """

    turns: tuple[tuple[str, str], ...] | None
    history_hash: str | None

    @property
    def empty(self) -> bool:
        return self.turns is None and self.history_hash is None

    @property
    def text(self) -> str | None:
        """The whole history as "role: text" lines (the raw history's hash when it is not plain text):
        what identifies the conversation of a reported wrong hit, and the `a`/`b` sides of its export."""
        if self.turns is None:
            return self.history_hash
        return "\n".join(f"{role}: {text}" for role, text in self.turns)

    def match_key(self, match: ConversationMatch) -> str:
        """What must be equal in two histories before the verifier compares them: every turn, whole,
        normalized (`exact`); nothing of a plain-text history (`aligned`: the verifier reads the turns, and a
        question asked alone shares its partition with the same question at the end of a chat). Raw
        histories are compared exactly in either mode."""
        if self.history_hash is not None:
            return self.history_hash
        if self.turns is None or match == "aligned":
            return "none"
        kept = [[role, normalized(text)] for role, text in self.turns]
        return f"{match}:" + hashlib.sha256(canonical_json(kept)).hexdigest()

    def embedded(self, prompt: str, match: ConversationMatch) -> str:
        """What a lookup embeds to find the nearest stored prompts: the last question; under the aligned
        match, a chat's whole situation, the question then the earlier turns from the latest back (the
        embedding model reads a bounded length: the turns nearest the question count first)."""
        if match != "aligned" or not self.turns:
            return prompt
        return "\n".join([prompt, *(text for _, text in reversed(self.turns))])

    @property
    def stored_turns(self) -> list[list[str]] | None:
        """The turns as an entry keeps them ([role, text] each), for the aligned match."""
        return [[role, text] for role, text in self.turns] if self.turns else None


def conversation(body: dict[str, Any]) -> Conversation:
    """The earlier turns of a chat, whole (no window: a difference anywhere in them counts)."""
    earlier = [m for m in (body.get("messages") or [])[:-1] if not _is_system(m)]
    if not earlier:
        return Conversation(turns=None, history_hash=None)
    turns = []
    for message in earlier:
        text = text_of(message.get("content")) if isinstance(message, dict) else None
        if message.get("role") not in CONTEXT_ROLES or text is None or _beyond_text(message):
            return Conversation(turns=None, history_hash=hashlib.sha256(canonical_json(earlier)).hexdigest())
        turns.append((message["role"], text.strip()))
    return Conversation(turns=tuple(turns), history_hash=None)


def _beyond_text(message: dict[str, Any]) -> dict[str, Any]:
    """A message's fields besides its role and text, empty ones aside (an SDK's assistant message
    sent back carries `"refusal": null`, `"tool_calls": []`)."""
    return {k: v for k, v in message.items() if k not in MESSAGE_TEXT_FIELDS and v not in (None, [], {}, "")}


def _is_system(message: Any) -> bool:
    return isinstance(message, dict) and message.get("role") in SYSTEM_ROLES


def partition_key(
    tenant: str,
    namespace: str,
    body: dict[str, Any],
    embedding_model: str,
    conversation_match: ConversationMatch = "exact",
    protocol: str = "openai",
    history: Conversation | None = None,
) -> str:
    """SHA-256 (hex) of everything that must be equal for a semantic hit.

    Tenant, namespace, embedding model, every output-affecting parameter and the system prompts;
    the last message's fields besides its text (a participant's `name`: "greet me by my name" is
    another question for alice than for bob); for conversations, what must be equal in the earlier
    turns (`Conversation.match_key`). The last user message's wording is compared by embedding and
    the hit verifier instead, and so are the earlier turns under the aligned match.
    `history` is `conversation(body)` when the caller has it already.
    """
    request = answer_affecting(body)
    messages = request.pop("messages", [])
    if history is None:
        history = conversation(body)
    material = {
        "tenant": tenant,
        "namespace": namespace,
        "embedding_model": embedding_model,
        "params": request,  # model, temperature, max_tokens, tools, response_format, ...
        "system": [m for m in messages if _is_system(m)],
        "history": history.match_key(conversation_match),
    }
    last = _beyond_text(messages[-1]) if messages and isinstance(messages[-1], dict) else {}
    if last:
        # Only when present, so the partitions of plain messages stay what they were before.
        material["last_message"] = last
    _add_protocol(material, protocol)
    return hashlib.sha256(canonical_json(material)).hexdigest()
