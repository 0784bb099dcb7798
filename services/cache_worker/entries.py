"""A cache entry as stored (Redis value, pgvector row) and served (a completion with a fresh id), and what
the cache worker keeps of a miss until its answer comes to be stored."""

from __future__ import annotations

import base64
import time
import uuid
from array import array
from dataclasses import dataclass
from typing import Any

import orjson

from shared.usage import TokenCounts, token_counts


@dataclass(frozen=True)
class CachedAnswer:
    """One stored answer and what is needed to serve it and account for it."""

    entry_id: str
    exact_key: str
    model: str
    completion: dict[str, Any]
    created_at: float
    upstream: str | None = None

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {
                "entry_id": self.entry_id,
                "exact_key": self.exact_key,
                "model": self.model,
                "completion": self.completion,
                "created_at": self.created_at,
                "upstream": self.upstream,
            }
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> CachedAnswer:
        data = orjson.loads(raw)
        return cls(**data)

    def age_seconds(self, now: float | None = None) -> int:
        return max(0, int((now or time.time()) - self.created_at))

    def usage(self) -> TokenCounts:
        """The tokens the upstream charged for this answer (OpenAI's or Anthropic's usage)."""
        return token_counts(self.completion.get("usage"))

    def served_completion(self) -> dict[str, Any]:
        """The stored answer with a fresh id, as a client expects of every response."""
        if self.completion.get("type") == "message":  # Anthropic's Messages format
            return {**self.completion, "id": f"msg_{uuid.uuid4().hex[:24]}"}
        return {**self.completion, "id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "created": int(time.time())}


@dataclass(frozen=True)
class PendingStore:
    """What storing a miss's answer for semantic search needs beyond the answer: its partition, prompt,
    conversation and vector. The lookup keeps it in Redis under the exact key until the answer comes (the
    LLM worker's store event names only the key), so no vector crosses the broker and the LLM worker knows
    nothing of the cache's schema."""

    partition_key: str
    prompt_text: str
    embedding: list[float]
    embedding_model: str
    context_text: str | None = None  # a conversation's earlier turns, whole, as "role: text" lines
    turns: list[list[str]] | None = None  # a conversation's earlier turns, [role, text] each (the aligned match)

    def to_bytes(self) -> bytes:
        # float32, as pgvector stores it: a quarter of the vector's JSON.
        vector = base64.b64encode(array("f", self.embedding).tobytes()).decode()
        return orjson.dumps(
            {
                "partition_key": self.partition_key,
                "prompt_text": self.prompt_text,
                "embedding": vector,
                "embedding_model": self.embedding_model,
                "context_text": self.context_text,
                "turns": self.turns,
            }
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> PendingStore:
        data = orjson.loads(raw)
        data["embedding"] = array("f", base64.b64decode(data["embedding"])).tolist()
        data.pop("user_turns", None)  # kept by a cache worker before the aligned match: no longer read
        return cls(**data)
