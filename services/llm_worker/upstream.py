"""Calls to the OpenAI-compatible upstream through the openai SDK; knows nothing of the broker.

One `AsyncOpenAI` client serves OpenAI, any OpenAI-compatible server (vLLM, Ollama, a gateway)
and the mock upstream. Failures come out as `UpstreamError` carrying an `ErrorInfo`, ready to
cross the broker, with API keys scrubbed from the message.
"""

from __future__ import annotations

import inspect
import logging
import re
import time
from collections.abc import AsyncGenerator, Iterable
from dataclasses import dataclass
from typing import Any, cast

import openai
from openai import AsyncStream
from openai.resources.chat.completions import AsyncCompletions
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from services.llm_worker.metrics import UPSTREAM_DURATION, UPSTREAM_REQUESTS, UPSTREAM_TIME_TO_FIRST_CHUNK
from services.llm_worker.settings import Settings
from shared.contracts import ErrorInfo

log = logging.getLogger(__name__)

OPENAI_BASE_URL = "https://api.openai.com/v1"
MOCK_LABEL = "mock"
# Local servers (vLLM, Ollama) ignore the key, but the SDK refuses to start without one.
NO_KEY = "not-needed"

# What create() accepts as keyword arguments; anything else in a client's payload goes via extra_body.
SDK_OPTIONS = frozenset({"self", "extra_headers", "extra_query", "extra_body", "timeout"})
CREATE_PARAMS = frozenset(inspect.signature(AsyncCompletions.create).parameters) - SDK_OPTIONS
# Set by the worker itself, whatever the client's payload says.
OWN_PARAMS = frozenset({"stream", "stream_options"})

SECRET_PATTERN = re.compile(r"\b(sk-[A-Za-z0-9*_\-]{2})[A-Za-z0-9*_\-]{4,}")


@dataclass(frozen=True)
class UpstreamTarget:
    """Where the worker sends completions, and how its answers are labelled."""

    base_url: str
    api_key: str
    label: str | None  # CacheInfo.upstream: "mock" on the mock upstream, else None
    name: str  # for logs

    @property
    def is_mock(self) -> bool:
        return self.label == MOCK_LABEL


def choose_target(settings: Settings) -> UpstreamTarget:
    """The configured upstream: UPSTREAM_BASE_URL, else OpenAI when a key is set, else the mock."""
    if settings.upstream_base_url:
        return UpstreamTarget(
            settings.upstream_base_url, settings.upstream_api_key or NO_KEY, None, settings.upstream_base_url
        )
    if settings.upstream_api_key:
        return UpstreamTarget(OPENAI_BASE_URL, settings.upstream_api_key, None, "openai")
    return UpstreamTarget(settings.mock_upstream_url, NO_KEY, MOCK_LABEL, MOCK_LABEL)


def create_client(target: UpstreamTarget, settings: Settings) -> openai.AsyncOpenAI:
    """The one SDK client of the process (it pools connections)."""
    return openai.AsyncOpenAI(
        base_url=target.base_url,
        api_key=target.api_key,
        timeout=settings.upstream_timeout_seconds,
        max_retries=settings.upstream_max_retries,
    )


class UpstreamError(Exception):
    """A failed upstream call, as the ErrorInfo to reply with."""

    def __init__(self, error: ErrorInfo, outcome: str = "error") -> None:
        super().__init__(error.message)
        self.error = error
        self.outcome = outcome


def split_body(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a client's payload into create() keyword arguments and extra_body (the SDK rejects unknown kwargs).

    `stream` and `stream_options` are left out: the worker decides them.
    """
    if not isinstance(body.get("model"), str) or not isinstance(body.get("messages"), list):
        raise UpstreamError(
            ErrorInfo(type="invalid_request_error", message="'model' and 'messages' are required", status=400),
            "invalid",
        )
    kwargs = {k: v for k, v in body.items() if k in CREATE_PARAMS and k not in OWN_PARAMS}
    extra = {k: v for k, v in body.items() if k not in CREATE_PARAMS and k not in OWN_PARAMS}
    return kwargs, extra


def redact(message: str, secrets: Iterable[str] = ()) -> str:
    """Scrub API keys from a message that will leave the worker."""
    for secret in secrets:
        if secret and len(secret) >= 8:
            message = message.replace(secret, "***")
    return SECRET_PATTERN.sub(r"\1***", message)


def error_info(exc: Exception, secrets: Iterable[str] = ()) -> UpstreamError:
    """Map an SDK exception to the UpstreamError to reply with (never a stack trace or a key)."""
    if isinstance(exc, UpstreamError):
        return exc
    if isinstance(exc, openai.APITimeoutError):
        return UpstreamError(
            ErrorInfo(type="upstream_timeout", message="The upstream did not answer in time.", status=504), "timeout"
        )
    if isinstance(exc, openai.APIConnectionError):
        return UpstreamError(
            ErrorInfo(type="upstream_unreachable", message="Could not reach the upstream.", status=502), "unreachable"
        )
    if isinstance(exc, openai.APIStatusError):
        body = exc.body if isinstance(exc.body, dict) else {}
        message = body.get("message") if isinstance(body.get("message"), str) else exc.message
        error = ErrorInfo(
            type=exc.type or "upstream_error",
            message=redact(message or f"Upstream error {exc.status_code}.", secrets),
            status=exc.status_code,
            code=exc.code,
        )
        return UpstreamError(error, f"error_{exc.status_code // 100}xx")
    if isinstance(exc, openai.APIError):
        # An error event in the middle of a stream: the HTTP status was 200, so it is a bad gateway.
        error = ErrorInfo(
            type=exc.type or "upstream_error",
            message=redact(exc.message or "The upstream failed mid-stream.", secrets),
            status=502,
            code=exc.code,
        )
        return UpstreamError(error, "error_stream")
    log.warning("unexpected upstream failure: %s", type(exc).__name__)
    return UpstreamError(
        ErrorInfo(type="upstream_error", message=f"The upstream call failed ({type(exc).__name__}).", status=502),
        "error",
    )


class Upstream:
    """Chat completions (whole or streamed) and the model list from one OpenAI-compatible upstream."""

    def __init__(self, client: openai.AsyncOpenAI, target: UpstreamTarget) -> None:
        self.client = client
        self.target = target

    @property
    def label(self) -> str | None:
        """CacheInfo.upstream for answers from here ("mock" or None)."""
        return self.target.label

    def _fail(self, exc: Exception) -> UpstreamError:
        error = error_info(exc, [self.target.api_key])
        UPSTREAM_REQUESTS.labels(error.outcome).inc()
        return error

    async def complete(self, body: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        """One whole chat.completion for a client's payload, as the JSON the upstream sent."""
        kwargs, extra = split_body(body)
        options = _options(extra, timeout)
        started = time.perf_counter()
        try:
            completion = cast(ChatCompletion, await self.client.chat.completions.create(**kwargs, **options))
        except Exception as exc:
            raise self._fail(exc) from None
        finally:
            UPSTREAM_DURATION.observe(time.perf_counter() - started)
        UPSTREAM_REQUESTS.labels("ok").inc()
        return completion.to_dict(mode="json")

    async def stream(self, body: dict[str, Any], timeout: float | None = None) -> AsyncGenerator[dict[str, Any], None]:
        """The chat.completion.chunk dicts of a streamed answer, ending with the usage-only chunk.

        Usage is always requested (the worker needs it for cost and the cache); whether the client
        sees it is the caller's business. Raises UpstreamError, possibly after some chunks.
        """
        kwargs, extra = split_body(body)
        client_options = body.get("stream_options")
        stream_options = {**(client_options if isinstance(client_options, dict) else {}), "include_usage": True}
        call = {**kwargs, **_options(extra, timeout), "stream": True, "stream_options": stream_options}
        started = time.perf_counter()
        try:
            chunks = cast(AsyncStream[ChatCompletionChunk], await self.client.chat.completions.create(**call))
            async with chunks:
                first = True
                async for chunk in chunks:
                    if first:
                        UPSTREAM_TIME_TO_FIRST_CHUNK.observe(time.perf_counter() - started)
                        first = False
                    yield chunk.to_dict(mode="json")
        except Exception as exc:
            raise self._fail(exc) from None
        finally:
            UPSTREAM_DURATION.observe(time.perf_counter() - started)
        UPSTREAM_REQUESTS.labels("ok").inc()

    async def list_models(self) -> list[dict[str, Any]]:
        """The upstream's models, as `data` items of OpenAI's list format (UpstreamError on failure)."""
        try:
            return [model.to_dict(mode="json") async for model in self.client.models.list()]
        except Exception as exc:
            # The control loop puts str(exc) in its reply: make that the scrubbed message, not the SDK's.
            raise error_info(exc, [self.target.api_key]) from None

    async def close(self) -> None:
        await self.client.close()


def _options(extra: dict[str, Any], timeout: float | None) -> dict[str, Any]:
    """SDK request options; left out rather than None, which would mean no timeout at all."""
    options: dict[str, Any] = {}
    if extra:
        options["extra_body"] = extra
    if timeout is not None:
        options["timeout"] = timeout
    return options
