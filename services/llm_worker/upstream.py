"""Calls to the OpenAI-compatible upstream through the openai SDK; knows nothing of the broker.

One `AsyncOpenAI` client serves OpenAI, any OpenAI-compatible server (vLLM, Ollama, a gateway)
and the mock upstream. Failures come out as `UpstreamError` carrying an `ErrorInfo`, ready to
cross the broker, with API keys scrubbed from the message.

Completions go through the SDK's generic `post` (its retries, auth, timeouts, SSE decoding and
error types) with the answer left as the JSON the upstream sent: the client's payload is JSON
already, and the worker forwards JSON, so `chat.completions.create` would only validate the
payload and build pydantic models to turn back into dicts. That round trip cost a miss about
0.7 ms of CPU, and a streamed answer about 0.3 ms a chunk.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncGenerator, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import openai
import orjson
from openai import AsyncStream, RequestOptions

from services.llm_worker.metrics import UPSTREAM_DURATION, UPSTREAM_REQUESTS, UPSTREAM_TIME_TO_FIRST_CHUNK
from services.llm_worker.settings import Settings
from shared.contracts import ErrorInfo

log = logging.getLogger(__name__)

OPENAI_BASE_URL = "https://api.openai.com/v1"
MOCK_LABEL = "mock"
# Local servers (vLLM, Ollama) ignore the key, but the SDK refuses to start without one.
NO_KEY = "not-needed"

CHAT_COMPLETIONS_PATH = "/chat/completions"
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


def upstream_payload(body: dict[str, Any]) -> dict[str, Any]:
    """The JSON body sent upstream: the client's payload as it came (fields OpenAI does not know, such as
    vLLM's `top_k`, included) less `stream` and `stream_options`, which the worker decides."""
    if not isinstance(body.get("model"), str) or not isinstance(body.get("messages"), list):
        raise UpstreamError(
            ErrorInfo(type="invalid_request_error", message="'model' and 'messages' are required", status=400),
            "invalid",
        )
    return {k: v for k, v in body.items() if k not in OWN_PARAMS}


def not_a_completion(what: str) -> UpstreamError:
    """An answer with HTTP 200 that is not the JSON of a chat completion (a misconfigured upstream URL)."""
    return UpstreamError(
        ErrorInfo(type="upstream_error", message=f"The upstream's answer is not a chat {what}.", status=502),
        "error_invalid",
    )


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
        raw = body.get("message")
        message = redact(raw if isinstance(raw, str) else exc.message or "", secrets)
        if exc.status_code in (401, 403):
            # The upstream refused the proxy's own key: passed on as a 401, it would tell the client
            # that its key (valid here) is wrong. The operator has to fix UPSTREAM_API_KEY.
            error = ErrorInfo(
                type="upstream_auth_error",
                message=f"The upstream refused this proxy's credentials (HTTP {exc.status_code}): {message}",
                status=502,
                code=_text_or_none(exc.code),
            )
        else:
            error = ErrorInfo(
                type=_text_or_none(exc.type) or "upstream_error",
                message=message or f"Upstream error {exc.status_code}.",
                status=exc.status_code,
                code=_text_or_none(exc.code),
                param=_text_or_none(exc.param),
                retry_after_seconds=retry_after(exc.response.headers),
            )
        return UpstreamError(error, f"error_{exc.status_code // 100}xx")
    if isinstance(exc, openai.APIError):
        # An error event in the middle of a stream: the HTTP status was 200, so it is a bad gateway.
        error = ErrorInfo(
            type=_text_or_none(exc.type) or "upstream_error",
            message=redact(exc.message or "The upstream failed mid-stream.", secrets),
            status=502,
            code=_text_or_none(exc.code),
            param=_text_or_none(exc.param),
        )
        return UpstreamError(error, "error_stream")
    log.warning("unexpected upstream failure: %s", type(exc).__name__)
    return UpstreamError(
        ErrorInfo(type="upstream_error", message=f"The upstream call failed ({type(exc).__name__}).", status=502),
        "error",
    )


def _text_or_none(value: object) -> str | None:
    """An upstream's `type`, `code` or `param` as OpenAI's format has them (strings): some servers
    send a number code or a list for the param, which would otherwise fail the ErrorInfo itself."""
    if isinstance(value, bool):
        return None
    return value if isinstance(value, str) else str(value) if isinstance(value, int) else None


def _json_or_none(text: str) -> object:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from the upstream's `retry-after-ms` or `retry-after` (seconds; an HTTP date is ignored)."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        try:
            seconds = float(headers.get(name, "")) * scale
        except ValueError:
            continue
        if 0 <= seconds < 86_400:
            return seconds
    return None


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
        payload = upstream_payload(body)
        started = time.perf_counter()
        try:
            completion = await self.client.post(
                CHAT_COMPLETIONS_PATH, body=payload, cast_to=object, options=_options(timeout)
            )
            if isinstance(completion, str):
                # The SDK leaves a body whose Content-Type does not say JSON as text; some servers
                # send their JSON as text/plain, and create() used to parse it anyway.
                completion = _json_or_none(completion)
            if not isinstance(completion, dict) or not isinstance(completion.get("choices"), list):
                raise not_a_completion("completion")
        except Exception as exc:
            raise self._fail(exc) from None
        finally:
            UPSTREAM_DURATION.observe(time.perf_counter() - started)
        UPSTREAM_REQUESTS.labels("ok").inc()
        return completion

    async def stream(self, body: dict[str, Any], timeout: float | None = None) -> AsyncGenerator[dict[str, Any], None]:
        """The chat.completion.chunk dicts of a streamed answer, ending with the usage-only chunk.

        Usage is always requested (the worker needs it for cost and the cache); whether the client
        sees it is the caller's business. Raises UpstreamError, possibly after some chunks.
        """
        client_options = body.get("stream_options")
        stream_options = {**(client_options if isinstance(client_options, dict) else {}), "include_usage": True}
        payload = {**upstream_payload(body), "stream": True, "stream_options": stream_options}
        started = time.perf_counter()
        try:
            chunks = await self.client.post(
                CHAT_COMPLETIONS_PATH,
                body=payload,
                cast_to=object,
                options=_options(timeout),
                stream=True,
                stream_cls=AsyncStream[object],
            )
            async with chunks:
                first = True
                async for chunk in chunks:
                    if not isinstance(chunk, dict):
                        raise not_a_completion("completion chunk")
                    if first:
                        UPSTREAM_TIME_TO_FIRST_CHUNK.observe(time.perf_counter() - started)
                        first = False
                    yield chunk
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


def _options(timeout: float | None) -> RequestOptions:
    """SDK request options; the timeout left out rather than None, which would mean no timeout at all."""
    return {} if timeout is None else {"timeout": timeout}
