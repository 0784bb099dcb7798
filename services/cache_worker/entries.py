"""A cache entry as stored (Redis value, pgvector row) and served (a completion with a fresh id)."""

from __future__ import annotations

import time
import uuid
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
