"""The upstream provider interface, and what every provider shares: errors as data, scrubbed of keys.

A provider speaks one API natively (`protocol`): it sends payloads in that format and returns the
upstream's answers as the JSON it sent (whole answers, or the chunks or events of a stream).
Translating between formats is not its business (`services.llm_worker.translate`).
"""

from __future__ import annotations

import abc
import re
from collections.abc import AsyncGenerator, Iterable, Mapping
from typing import Any

from services.llm_worker.routing import UpstreamConfig
from shared.contracts.base import ErrorInfo
from shared.contracts.completions import ApiProtocol

# What reading an answer of an unexpected shape raises (a field null, a list where an object was due, ...).
MALFORMED = (AttributeError, KeyError, TypeError, ValueError)
SECRET_PATTERN = re.compile(r"\b(sk-[A-Za-z0-9*_\-]{2})[A-Za-z0-9*_\-]{4,}")


class UpstreamError(Exception):
    """A failed upstream call (or a request no upstream can take), as the ErrorInfo to reply with."""

    def __init__(self, error: ErrorInfo, outcome: str = "error") -> None:
        super().__init__(error.message)
        self.error = error
        self.outcome = outcome  # the llmcache_upstream_requests_total label


def invalid_request(
    message: str, param: str | None = None, status: int = 400, code: str | None = None
) -> UpstreamError:
    """A request the upstream is never asked: the client's to fix."""
    return UpstreamError(
        ErrorInfo(type="invalid_request_error", message=message, status=status, param=param, code=code), "invalid"
    )


class Provider(abc.ABC):
    """One upstream, reached with its provider's official SDK; one instance (one connection pool) per upstream."""

    protocol: ApiProtocol  # the API format it sends and answers in

    def __init__(self, config: UpstreamConfig) -> None:
        self.config = config

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def label(self) -> str | None:
        """CacheInfo.upstream for answers from here ("mock" or None)."""
        return self.config.label

    @abc.abstractmethod
    async def complete(self, payload: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        """One whole answer for a payload in this provider's format (UpstreamError on failure)."""

    @abc.abstractmethod
    def stream(self, payload: dict[str, Any], timeout: float | None = None) -> AsyncGenerator[dict[str, Any], None]:
        """The chunks (OpenAI) or events (Anthropic) of a streamed answer, usage included; UpstreamError
        on failure, possibly after some of them."""

    @abc.abstractmethod
    async def embed(self, payload: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        """An OpenAI embeddings response for an OpenAI embeddings payload (UpstreamError if there is none)."""

    @abc.abstractmethod
    async def list_models(self) -> list[dict[str, Any]]:
        """The upstream's models as `data` items of OpenAI's list format (UpstreamError on failure)."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Close the SDK client."""


def redact(message: str, secrets: Iterable[str] = ()) -> str:
    """Scrub API keys from a message that will leave the worker."""
    for secret in secrets:
        if secret and len(secret) >= 8:
            message = message.replace(secret, "***")
    return SECRET_PATTERN.sub(r"\1***", message)


def text_or_none(value: object) -> str | None:
    """An upstream's `type`, `code` or `param` as the error formats have them (strings): some servers
    send a number code or a list for the param, which would otherwise fail the ErrorInfo itself."""
    if isinstance(value, bool):
        return None
    return value if isinstance(value, str) else str(value) if isinstance(value, int) else None


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


def auth_refused(status: int, message: str, code: str | None = None) -> UpstreamError:
    """The upstream refused the proxy's own key: passed on as a 401, it would tell the client that its key
    (valid here) is wrong. The operator has to fix the upstream's key."""
    return UpstreamError(
        ErrorInfo(
            type="upstream_auth_error",
            message=f"The upstream refused this proxy's credentials (HTTP {status}): {message}",
            status=502,
            code=code,
        ),
        f"error_{status // 100}xx",
    )


def not_an_answer(what: str) -> UpstreamError:
    """An answer with HTTP 200 that is not the JSON expected (a misconfigured upstream URL)."""
    return UpstreamError(
        ErrorInfo(type="upstream_error", message=f"The upstream's answer is not {what}.", status=502),
        "error_invalid",
    )


def options(timeout: float | None) -> Any:  # each SDK's RequestOptions (a TypedDict both accept)
    """SDK request options; the timeout left out rather than None, which would mean no timeout at all."""
    return {} if timeout is None else {"timeout": timeout}
