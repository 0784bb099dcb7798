"""The one log line of each request in the gateway's log: result, match, similarity, model, tenant,
status, latency, request id and trace id; never the prompt, the answer or a key (LOG_REQUESTS=false turns it off)."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace
from typing import Any

from opentelemetry import trace

from shared.contracts.base import CacheInfo

log = logging.getLogger("services.gateway.requests")
_UNSAFE = re.compile(r"[^\w.:/@+-]")


def _safe(value: str | None) -> str:
    """A value as one token of a log line: no spaces or control characters, at most 80 characters."""
    return _UNSAFE.sub("?", value[:80]) if value else "-"


@dataclass(frozen=True)
class RequestLine:
    """What is known of a request so far; `log` writes it once it is answered."""

    state: Any  # GatewayState (its settings.log_requests)
    request_id: str | None = None
    tenant: str | None = None
    model: str | None = None
    cache: CacheInfo | None = None
    error: str | None = None

    def answered(self, cache: CacheInfo) -> RequestLine:
        return replace(self, cache=cache)

    def failed(self, error: str) -> RequestLine:
        return replace(self, error=error)

    def log(self, status: int, result: str, stream: bool, elapsed: float) -> None:
        if not self.state.settings.log_requests:
            return
        cache = self.cache
        parts = [f"request {result}"]
        if cache is not None and cache.match:
            parts.append(f"match={cache.match}")
        if cache is not None and cache.similarity is not None:
            parts.append(f"similarity={cache.similarity:.4f}")
        if cache is not None and cache.bypass_reason:
            parts.append(f"reason={_safe(cache.bypass_reason)}")
        if cache is not None and cache.coalesced:
            parts.append("coalesced=true")
        if self.error:
            parts.append(f"error={_safe(self.error)}")
        parts += [
            f"model={_safe(self.model)}",
            f"tenant={_safe(self.tenant)}",
            f"status={status}",
            f"latency_ms={elapsed * 1000:.1f}",
        ]
        if stream:
            parts.append("stream=true")
        parts.append(f"id={self.request_id or '-'}")
        traced = trace.get_current_span().get_span_context()
        if traced.is_valid:  # the request's trace, when tracing is on and it was sampled
            parts.append(f"trace={traced.trace_id:032x}")
        log.info(" ".join(parts))
