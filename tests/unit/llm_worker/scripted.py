"""A provider that answers with what a test scripts, for upstream answers the mock never sends (malformed ones)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from typing import Any

from services.llm_worker.providers.base import Provider
from services.llm_worker.routing import UpstreamConfig
from shared.contracts.completions import ApiProtocol


class ScriptedProvider(Provider):
    """Answers every call with the scripted answer, stream events or embeddings; records what it was sent."""

    def __init__(
        self,
        protocol: ApiProtocol,
        *,
        answer: Any = None,
        events: Sequence[Any] = (),
        embeddings: Any = None,
    ) -> None:
        super().__init__(UpstreamConfig("scripted", protocol, "http://scripted.invalid", "", ("*",)))
        self.protocol = protocol
        self.answer = answer
        self.events = list(events)
        self.embeddings = embeddings
        self.sent: list[dict[str, Any]] = []

    async def complete(self, payload: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        self.sent.append(payload)
        return self.answer  # type: ignore[no-any-return]

    async def stream(
        self, payload: dict[str, Any], timeout: float | None = None
    ) -> AsyncGenerator[dict[str, Any], None]:
        self.sent.append(payload)
        for event in self.events:
            yield event

    async def embed(self, payload: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        self.sent.append(payload)
        return self.embeddings  # type: ignore[no-any-return]

    async def list_models(self) -> list[dict[str, Any]]:
        return []

    async def close(self) -> None:
        return None
