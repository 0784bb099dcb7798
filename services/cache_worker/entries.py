"""A cache entry as stored (Redis value, pgvector row) and served (a completion with a fresh id)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import orjson


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

    def usage(self) -> tuple[int, int]:
        """Prompt and completion tokens the upstream charged for this answer."""
        usage = self.completion.get("usage") or {}
        return int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)

    def served_completion(self) -> dict[str, Any]:
        """The stored completion with a fresh id, as a client expects of every response."""
        return {**self.completion, "id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "created": int(time.time())}
