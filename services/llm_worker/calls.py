"""One request, in the client's API format, answered by a provider of either format.

Where the formats agree the payload goes as it came; where they differ it is translated there and
the answer (whole, or each chunk or event of a stream) and any error translated back, so the rest
of the worker only ever sees answers in the client's format. A request with no translation is the
client's to fix (400); an answer with none is the upstream's fault (502), whatever the translation
raised, so a malformed answer is never retried or billed twice.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from services.llm_worker.providers.base import MALFORMED, Provider, UpstreamError, invalid_request, not_an_answer
from services.llm_worker.translate import anthropic_to_openai, openai_to_anthropic
from shared.contracts.completions import ApiProtocol

# What translating a malformed answer raises: a refusal (UpstreamError) or a shape it could not read.
UNREADABLE = (UpstreamError, *MALFORMED)
T = TypeVar("T")


def untranslatable_answer(exc: Exception) -> UpstreamError:
    """An upstream answer the translation cannot read: the upstream's fault (502), never the client's 400."""
    detail = exc.error.message if isinstance(exc, UpstreamError) else f"{type(exc).__name__}: {exc}"
    return not_an_answer(f"one that can be translated to the client's format ({detail})")


@dataclass(frozen=True)
class Call:
    """A request bound for one provider."""

    provider: Provider
    protocol: ApiProtocol  # the client's format
    body: dict[str, Any]  # the client's payload
    default_max_tokens: int  # for OpenAI-format requests to Anthropic that set none

    @property
    def translated(self) -> bool:
        return self.provider.protocol != self.protocol

    def payload(self) -> dict[str, Any]:
        """What the provider is sent (UpstreamError 400 when the request has no translation)."""
        if not self.translated:
            return self.body
        try:
            if self.protocol == "openai":
                return openai_to_anthropic.to_messages_request(self.body, self.default_max_tokens)
            return anthropic_to_openai.to_chat_request(self.body)
        except UpstreamError:
            raise
        except MALFORMED as exc:
            # A shape the gateway's schema lets through and the translation cannot read: the client's to fix.
            raise invalid_request(f"The request could not be translated for this model's upstream ({exc}).") from None

    @staticmethod
    def _translated(translate: Callable[..., T], *parts: Any) -> T:
        """An answer, or what a chunk or event of a stream (or its end) amounts to, in the client's format."""
        try:
            return translate(*parts)
        except UNREADABLE as exc:
            raise untranslatable_answer(exc) from None

    def _error(self, exc: UpstreamError) -> UpstreamError:
        if not self.translated:
            return exc
        if self.protocol == "openai":
            error = openai_to_anthropic.error_for_openai_client(exc.error)
        else:
            error = anthropic_to_openai.error_for_anthropic_client(exc.error)
        return UpstreamError(error, exc.outcome)

    async def complete(self, timeout: float | None) -> dict[str, Any]:
        """The whole answer, in the client's format."""
        payload = self.payload()
        try:
            answer = await self.provider.complete(payload, timeout)
        except UpstreamError as exc:
            raise self._error(exc) from None
        if not self.translated:
            return answer
        if self.protocol == "openai":
            return self._translated(openai_to_anthropic.to_chat_completion, answer)
        return self._translated(anthropic_to_openai.to_message, answer)

    async def stream(self, timeout: float | None) -> AsyncGenerator[dict[str, Any], None]:
        """The chunks (OpenAI) or events (Anthropic) of the streamed answer, in the client's format."""
        payload = self.payload()
        if self.translated and self.protocol == "openai":
            chunks = openai_to_anthropic.ChunksFromEvents()
            try:
                async for event in self.provider.stream(payload, timeout):
                    for chunk in self._translated(chunks.feed, event):
                        yield chunk
            except UpstreamError as exc:
                raise self._error(exc) from None
        elif self.translated:
            events = anthropic_to_openai.EventsFromChunks()
            try:
                async for chunk in self.provider.stream(
                    {**payload, "stream_options": {"include_usage": True}}, timeout
                ):
                    for event in self._translated(events.feed, chunk):
                        yield event
            except UpstreamError as exc:
                raise self._error(exc) from None
            for event in self._translated(events.finish_events):
                yield event
        else:
            async for part in self.provider.stream(payload, timeout):
                yield part
