"""What identifies a request: the exact key, the semantic partition, and the text that gets embedded.

Pure functions. The exact key is a SHA-256 over a canonical JSON of everything that changes the
answer; the partition key groups requests between which a semantic hit is allowed at all (same
tenant, namespace, model, system prompts, output-affecting parameters, earlier turns and
embedding model); the prompt text is what the embedding compares.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

# Request fields that do not change the answer: how it is delivered, or who asked.
DELIVERY_FIELDS = frozenset({"stream", "stream_options", "user", "metadata", "store", "service_tier"})
SYSTEM_ROLES = frozenset({"system", "developer"})


def canonical_json(value: Any) -> bytes:
    """JSON with sorted keys and no whitespace: the same request always gives the same bytes."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def answer_affecting(body: dict[str, Any]) -> dict[str, Any]:
    """The request without the fields that don't change the answer."""
    return {k: v for k, v in body.items() if k not in DELIVERY_FIELDS}


def exact_key(tenant: str, namespace: str, body: dict[str, Any]) -> str:
    """SHA-256 (hex) of the tenant, the namespace and every answer-affecting field of the request."""
    material = {"tenant": tenant, "namespace": namespace, "request": answer_affecting(body)}
    return hashlib.sha256(canonical_json(material)).hexdigest()


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


def partition_key(tenant: str, namespace: str, body: dict[str, Any], embedding_model: str) -> str:
    """SHA-256 (hex) of everything that must be equal for a semantic hit: all but the last user message's wording.

    System prompts and earlier turns are part of it, so "yes, cancel it" in two different
    conversations never matches.
    """
    request = answer_affecting(body)
    messages = request.pop("messages", [])
    material = {
        "tenant": tenant,
        "namespace": namespace,
        "embedding_model": embedding_model,
        "params": request,  # model, temperature, max_tokens, tools, response_format, ...
        "earlier_messages": messages[:-1],
    }
    return hashlib.sha256(canonical_json(material)).hexdigest()
