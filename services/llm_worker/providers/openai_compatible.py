"""The OpenAI-compatible provider: OpenAI, vLLM, Ollama, llama.cpp's server, a gateway, the mock; through the
openai SDK.

Completions go through the SDK's generic `post` (its retries, auth, timeouts, SSE decoding and
error types) with the answer left as the JSON the upstream sent: the client's payload is JSON
already, and the worker forwards JSON, so `chat.completions.create` would only validate the
payload and build pydantic models to turn back into dicts. That round trip cost a miss about
0.7 ms of CPU, and a streamed answer about 0.3 ms a chunk.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator
from typing import Any

import openai
import orjson
from openai import AsyncStream

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

CHAT_COMPLETIONS_PATH = "/chat/completions"
EMBEDDINGS_PATH = "/embeddings"
# Set by the worker itself, whatever the client's payload says.
OWN_PARAMS = frozenset({"stream", "stream_options"})


def upstream_payload(body: dict[str, Any]) -> dict[str, Any]:
    """The JSON body sent upstream: the client's payload as it came (fields OpenAI does not know, such as
    vLLM's `top_k`, included) less `stream` and `stream_options`, which the worker decides."""
    if not isinstance(body.get("model"), str) or not isinstance(body.get("messages"), list):
        raise invalid_request("'model' and 'messages' are required")
    return {k: v for k, v in body.items() if k not in OWN_PARAMS}


def error_info(exc: Exception, secrets: list[str] | tuple[str, ...] = ()) -> UpstreamError:
    """Map an openai SDK exception to the UpstreamError to reply with (never a stack trace or a key)."""
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
            return auth_refused(exc.status_code, message, text_or_none(exc.code))
        error = ErrorInfo(
            type=text_or_none(exc.type) or "upstream_error",
            message=message or f"Upstream error {exc.status_code}.",
            status=exc.status_code,
            code=text_or_none(exc.code),
            param=text_or_none(exc.param),
            retry_after_seconds=retry_after(exc.response.headers),
        )
        return UpstreamError(error, f"error_{exc.status_code // 100}xx")
    if isinstance(exc, openai.APIError):
        # An error event in the middle of a stream: the HTTP status was 200, so it is a bad gateway.
        error = ErrorInfo(
            type=text_or_none(exc.type) or "upstream_error",
            message=redact(exc.message or "The upstream failed mid-stream.", secrets),
            status=502,
            code=text_or_none(exc.code),
            param=text_or_none(exc.param),
        )
        return UpstreamError(error, "error_stream")
    log.warning("unexpected upstream failure: %s", type(exc).__name__)
    return UpstreamError(
        ErrorInfo(type="upstream_error", message=f"The upstream call failed ({type(exc).__name__}).", status=502),
        "error",
    )


def _json_or_none(text: str) -> object:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


class OpenAICompatibleProvider(Provider):
    """Chat completions (whole or streamed), embeddings and the model list from one OpenAI-compatible upstream."""

    protocol = "openai"

    def __init__(self, config: UpstreamConfig, *, timeout: float, max_retries: int) -> None:
        super().__init__(config)
        # One SDK client per upstream: it pools connections.
        self.client = openai.AsyncOpenAI(
            base_url=config.base_url, api_key=config.api_key, timeout=timeout, max_retries=max_retries
        )

    def _fail(self, exc: Exception) -> UpstreamError:
        error = error_info(exc, [self.config.api_key])
        UPSTREAM_REQUESTS.labels(error.outcome).inc()
        return error

    async def complete(self, payload: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        """One whole chat.completion for a client's payload, as the JSON the upstream sent."""
        started = time.perf_counter()
        try:
            completion = await self.client.post(
                CHAT_COMPLETIONS_PATH, body=upstream_payload(payload), cast_to=object, options=options(timeout)
            )
            if isinstance(completion, str):
                # The SDK leaves a body whose Content-Type does not say JSON as text; some servers
                # send their JSON as text/plain, and create() used to parse it anyway.
                completion = _json_or_none(completion)
            if not isinstance(completion, dict) or not isinstance(completion.get("choices"), list):
                raise not_an_answer("a chat completion")
        except Exception as exc:
            raise self._fail(exc) from None
        finally:
            UPSTREAM_DURATION.observe(time.perf_counter() - started)
        UPSTREAM_REQUESTS.labels("ok").inc()
        return completion

    async def stream(
        self, payload: dict[str, Any], timeout: float | None = None
    ) -> AsyncGenerator[dict[str, Any], None]:
        """The chat.completion.chunk dicts of a streamed answer, ending with the usage-only chunk.

        Usage is always requested (the worker needs it for cost and the cache); whether the client
        sees it is the caller's business.
        """
        client_options = payload.get("stream_options")
        stream_options = {**(client_options if isinstance(client_options, dict) else {}), "include_usage": True}
        started = time.perf_counter()
        try:
            body = {**upstream_payload(payload), "stream": True, "stream_options": stream_options}
            chunks = await self.client.post(
                CHAT_COMPLETIONS_PATH,
                body=body,
                cast_to=object,
                options=options(timeout),
                stream=True,
                stream_cls=AsyncStream[object],
            )
            async with chunks:
                first = True
                async for chunk in chunks:
                    if not isinstance(chunk, dict):
                        raise not_an_answer("a chat completion chunk")
                    if first:
                        UPSTREAM_TIME_TO_FIRST_CHUNK.observe(time.perf_counter() - started)
                        first = False
                    yield chunk
        except Exception as exc:
            raise self._fail(exc) from None
        finally:
            UPSTREAM_DURATION.observe(time.perf_counter() - started)
        UPSTREAM_REQUESTS.labels("ok").inc()

    async def embed(self, payload: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        """The upstream's embeddings response for the payload, as the JSON it sent."""
        started = time.perf_counter()
        try:
            result = await self.client.post(EMBEDDINGS_PATH, body=payload, cast_to=object, options=options(timeout))
            if isinstance(result, str):
                result = _json_or_none(result)
            if not isinstance(result, dict) or not isinstance(result.get("data"), list):
                raise not_an_answer("an embeddings list")
        except Exception as exc:
            raise self._fail(exc) from None
        finally:
            UPSTREAM_DURATION.observe(time.perf_counter() - started)
        UPSTREAM_REQUESTS.labels("ok").inc()
        return result

    async def list_models(self) -> list[dict[str, Any]]:
        try:
            return [model.to_dict(mode="json") async for model in self.client.models.list()]
        except Exception as exc:
            # The control loop puts str(exc) in its reply: make that the scrubbed message, not the SDK's.
            raise error_info(exc, [self.config.api_key]) from None

    async def close(self) -> None:
        await self.client.close()
