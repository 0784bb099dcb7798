"""The mock upstream's per-app state: injected faults and call counters that tests read back."""

from __future__ import annotations

from collections import Counter
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class FaultSpec(BaseModel):
    """POST /_mock/faults: make the next `count` chat or Messages calls fail with `status` (-1: until cleared).

    On the Messages API the error is Anthropic's for the status (529: overloaded_error) unless `type` says."""

    model_config = ConfigDict(extra="forbid")

    status: int = Field(ge=400, le=599)
    count: int = Field(default=1, ge=-1)
    retry_after: float | None = Field(default=None, ge=0)  # sent as the Retry-After header
    delay_ms: float = Field(default=0, ge=0)  # extra delay before failing
    message: str | None = None
    type: str | None = None
    code: str | None = None
    # Streamed calls only: send this many chunks first, then the error as an SSE event (a mid-stream failure).
    after_chunks: int | None = Field(default=None, ge=0)


class MockState:
    """Faults waiting to fire and what has been called so far."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget faults and counters."""
        self.fault: FaultSpec | None = None
        self._remaining = 0
        self.chat_calls = 0
        self.stream_calls = 0
        self.embedding_calls = 0
        self.embedding_inputs = 0
        self.messages_calls = 0  # Anthropic's Messages API
        self.messages_stream_calls = 0
        self.models_calls = 0  # GET /v1/models, in either format
        self.calls_by_prompt: Counter[str] = Counter()
        self.calls_by_key: Counter[str] = Counter()  # the API key each call came with (Bearer or x-api-key)

    def set_fault(self, fault: FaultSpec) -> None:
        """Arm a fault (replacing any armed one)."""
        self.fault = fault if fault.count != 0 else None
        self._remaining = fault.count

    def clear_fault(self) -> None:
        self.fault = None
        self._remaining = 0

    def take_fault(self) -> FaultSpec | None:
        """The fault this call should fail with, if one is armed (and count it down)."""
        fault = self.fault
        if fault is None:
            return None
        if self._remaining > 0:
            self._remaining -= 1
            if self._remaining == 0:
                self.fault = None
        return fault

    def count_chat(self, prompt: str, stream: bool) -> None:
        """Count one chat call: every call counts in chat_calls, streamed ones also in stream_calls."""
        self.chat_calls += 1
        if stream:
            self.stream_calls += 1
        self.calls_by_prompt[prompt] += 1

    def count_messages(self, prompt: str, stream: bool) -> None:
        """Count one Messages call (streamed ones also in messages_stream_calls)."""
        self.messages_calls += 1
        if stream:
            self.messages_stream_calls += 1
        self.calls_by_prompt[prompt] += 1

    def count_key(self, key: str | None) -> None:
        self.calls_by_key[key or ""] += 1

    def stats(self) -> dict[str, Any]:
        """GET /_mock/stats."""
        return {
            "chat_calls": self.chat_calls,
            "stream_calls": self.stream_calls,
            "embedding_calls": self.embedding_calls,
            "embedding_inputs": self.embedding_inputs,
            "messages_calls": self.messages_calls,
            "messages_stream_calls": self.messages_stream_calls,
            "models_calls": self.models_calls,
            "calls_by_prompt": dict(self.calls_by_prompt),
            "calls_by_key": dict(self.calls_by_key),
        }
