"""One request, in the client's API format, answered by a provider of either format.

Where the formats agree the payload goes as it came; where they differ it is translated there and
the answer (whole, or each chunk or event of a stream) and any error translated back, so the rest
of the worker only ever sees answers in the client's format.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any

from services.llm_worker.providers.base import Provider, UpstreamError, invalid_request, not_an_answer
from services.llm_worker.translate import anthropic_to_openai, openai_to_anthropic
from shared.contracts import ApiProtocol


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
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            # A shape the gateway's schema lets through and the translation cannot read: the client's to fix.
            raise invalid_request(f"The request could not be translated for this model's upstream ({exc}).") from None

    def _answer(self, translate: Callable[[dict[str, Any]], dict[str, Any]], answer: dict[str, Any]) -> dict[str, Any]:
        try:
            return translate(answer)
        except UpstreamError:
            raise
        except (AttributeError, KeyError, TypeError, ValueError):
            raise not_an_answer("an answer that can be translated") from None

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
            return self._answer(openai_to_anthropic.to_chat_completion, answer)
        return self._answer(anthropic_to_openai.to_message, answer)

    async def stream(self, timeout: float | None) -> AsyncGenerator[dict[str, Any], None]:
        """The chunks (OpenAI) or events (Anthropic) of the streamed answer, in the client's format."""
        payload = self.payload()
        if self.translated and self.protocol == "openai":
            chunks = openai_to_anthropic.ChunksFromEvents()
            try:
                async for event in self.provider.stream(payload, timeout):
                    for chunk in chunks.feed(event):
                        yield chunk
            except UpstreamError as exc:
                raise self._error(exc) from None
        elif self.translated:
            events = anthropic_to_openai.EventsFromChunks()
            try:
                async for chunk in self.provider.stream(
                    {**payload, "stream_options": {"include_usage": True}}, timeout
                ):
                    for event in events.feed(chunk):
                        yield event
            except UpstreamError as exc:
                raise self._error(exc) from None
            for event in events.finish_events():
                yield event
        else:
            async for part in self.provider.stream(payload, timeout):
                yield part
