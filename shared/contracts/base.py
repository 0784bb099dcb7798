"""What every message shares: the versioned base model, and errors as data (`ErrorReply` answers any
RPC; on the request path it carries the request's `CacheInfo`, the X-Cache* headers).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

SCHEMA_VERSION = 1


class Contract(BaseModel):
    """Base of every message: versioned, strict about unknown versions, lenient about extra fields."""

    model_config = ConfigDict(extra="ignore")
    v: Literal[1] = 1  # SCHEMA_VERSION


class CacheInfo(BaseModel):
    """How a reply was produced: becomes the X-Cache* response headers."""

    status: Literal["HIT", "MISS", "BYPASS"]
    match: Literal["exact", "semantic"] | None = None
    similarity: float | None = None
    key: str | None = None
    age_seconds: int | None = None
    bypass_reason: str | None = None
    upstream: str | None = None  # "mock" when no real upstream is configured
    coalesced: bool = False  # answered from a concurrent identical request's upstream call
    # Embeddings: how many of the request's inputs the cache answered, of how many.
    inputs_cached: int | None = None
    inputs: int | None = None


class ErrorInfo(BaseModel):
    """An error as data: turned into an OpenAI-style error body with `status` at the gateway."""

    type: str = "api_error"
    message: str
    status: int = 500
    code: str | None = None
    param: str | None = None
    # From the upstream's Retry-After (a 429 or 503): the client's SDK waits this long before its retry.
    retry_after_seconds: float | None = None


class ErrorReply(Contract):
    """A failure, as data."""

    type: Literal["error"] = "error"
    error: ErrorInfo
    cache: CacheInfo | None = None  # an upstream's error: the request's X-Cache* headers (a miss or a bypass)
