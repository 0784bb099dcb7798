"""The Anthropic provider: Anthropic's Messages API, through the official anthropic SDK.

Like the OpenAI-compatible provider it uses the SDK's generic `post` (auth, `anthropic-version`,
retries, timeouts, SSE decoding, error types) and keeps the answer as the JSON Anthropic sent, so
a Messages request from a client reaches Anthropic with every field it set, and a translated one
loses nothing on the way back. Errors keep Anthropic's status and type (529 `overloaded_error`
included); making them OpenAI's is the translation's business.

The SDK is imported on the first Anthropic call, in a thread, not when the worker starts: it was half of
the worker's import time (2.1 of 4.3 s on a slow machine), which a worker restarted after a crash spent
before it took any request, OpenAI's included.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator
from datetime import datetime
from types import ModuleType
from typing import Any

from services.llm_worker.metrics import UPSTREAM_DURATION, UPSTREAM_REQUESTS, UPSTREAM_TIME_TO_FIRST_CHUNK
from services.llm_worker.providers.base import (
    Provider,
    UpstreamError,
    auth_refused,
    invalid_request,
    not_an_answer,
    options,
    redact,
    retry_after,
    text_or_none,
)
from services.llm_worker.routing import UpstreamConfig
from shared.contracts.base import ErrorInfo

log = logging.getLogger(__name__)

MESSAGES_PATH = "/v1/messages"


def _sdk() -> ModuleType:
    """The anthropic SDK (imported once, on first use)."""
    import anthropic

    return anthropic


def error_info(exc: Exception, secrets: list[str] | tuple[str, ...] = ()) -> UpstreamError:
    """Map an anthropic SDK exception to the UpstreamError to reply with, in Anthropic's terms."""
    if isinstance(exc, UpstreamError):
        return exc
    anthropic = _sdk()
    if isinstance(exc, anthropic.APITimeoutError):
        return UpstreamError(
            ErrorInfo(type="upstream_timeout", message="The upstream did not answer in time.", status=504), "timeout"
        )
    if isinstance(exc, anthropic.APIConnectionError):
        return UpstreamError(
            ErrorInfo(type="upstream_unreachable", message="Could not reach the upstream.", status=502), "unreachable"
        )
    if isinstance(exc, anthropic.APIStatusError):
        message = redact(exc.api_message or exc.message or "", secrets)
        status = exc.status_code
        if status in (401, 403):
            return auth_refused(status, message, text_or_none(exc.type))
        if status == 200:
            # An error event in the middle of a stream: the HTTP status was 200, so it is a bad gateway
            # (an overloaded upstream aside: that is worth retrying, as Anthropic's own 529 is).
            status = 529 if exc.type == "overloaded_error" else 502
            outcome = "error_stream"
        else:
            outcome = f"error_{status // 100}xx"
        error = ErrorInfo(
            type=text_or_none(exc.type) or "api_error",
            message=message or f"Upstream error {status}.",
            status=status,
            code=text_or_none(exc.error_code),
            retry_after_seconds=retry_after(exc.response.headers),
        )
        return UpstreamError(error, outcome)
    log.warning("unexpected upstream failure: %s", type(exc).__name__)
    return UpstreamError(
        ErrorInfo(type="upstream_error", message=f"The upstream call failed ({type(exc).__name__}).", status=502),
        "error",
    )


class AnthropicProvider(Provider):
    """Messages (whole or streamed) and the model list from Anthropic (or anything serving its Messages API)."""

    protocol = "anthropic"

    def __init__(self, config: UpstreamConfig, *, timeout: float, max_retries: int) -> None:
        super().__init__(config)
        self._timeout = timeout
        self._max_retries = max_retries
        self._client: Any = None

    async def _sdk_client(self) -> Any:
        """The SDK's client, made on first use (the SDK imported off the event loop)."""
        if self._client is None:
            sdk = await asyncio.to_thread(_sdk)
            if self._client is None:  # another call may have made it meanwhile
                self._client = sdk.AsyncAnthropic(
                    base_url=self.config.base_url,
                    api_key=self.config.api_key,
                    timeout=self._timeout,
                    max_retries=self._max_retries,
                )
        return self._client

    def _fail(self, exc: Exception) -> UpstreamError:
        error = error_info(exc, [self.config.api_key])
        UPSTREAM_REQUESTS.labels(error.outcome).inc()
        return error

    async def complete(self, payload: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        """One whole Message for a Messages payload, as the JSON Anthropic sent."""
        started = time.perf_counter()
        try:
            body = {k: v for k, v in payload.items() if k != "stream"}
            client = await self._sdk_client()
            message = await client.post(MESSAGES_PATH, body=body, cast_to=object, options=options(timeout))
            if not isinstance(message, dict) or not isinstance(message.get("content"), list):
                raise not_an_answer("a message")
        except Exception as exc:
            raise self._fail(exc) from None
        finally:
            UPSTREAM_DURATION.observe(time.perf_counter() - started)
        UPSTREAM_REQUESTS.labels("ok").inc()
        return message

    async def stream(
        self, payload: dict[str, Any], timeout: float | None = None
    ) -> AsyncGenerator[dict[str, Any], None]:
        """The events of a streamed Message (`message_start` ... `message_stop`; the SDK drops `ping`)."""
        started = time.perf_counter()
        try:
            client = await self._sdk_client()
            events = await client.post(
                MESSAGES_PATH,
                body={**payload, "stream": True},
                cast_to=object,
                options=options(timeout),
                stream=True,
                stream_cls=_sdk().AsyncStream[object],
            )
            async with events:
                first = True
                async for event in events:
                    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
                        raise not_an_answer("a message stream event")
                    if first:
                        UPSTREAM_TIME_TO_FIRST_CHUNK.observe(time.perf_counter() - started)
                        first = False
                    yield event
        except Exception as exc:
            raise self._fail(exc) from None
        finally:
            UPSTREAM_DURATION.observe(time.perf_counter() - started)
        UPSTREAM_REQUESTS.labels("ok").inc()

    async def embed(self, payload: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        raise invalid_request(
            f"The model '{payload.get('model')}' is served by an Anthropic upstream, which has no embeddings API.",
            param="model",
        )

    async def list_models(self) -> list[dict[str, Any]]:
        """Anthropic's models, as OpenAI lists models."""
        try:
            client = await self._sdk_client()
            return [
                {
                    "id": model.id,
                    "object": "model",
                    "created": _epoch(model.created_at),
                    "owned_by": "anthropic",
                    "display_name": model.display_name,
                }
                async for model in client.models.list(limit=1000)
            ]
        except Exception as exc:
            raise error_info(exc, [self.config.api_key]) from None

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()


def _epoch(value: datetime | None) -> int:
    return int(value.timestamp()) if value is not None else 0
