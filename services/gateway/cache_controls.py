"""Per-request cache controls from HTTP headers, following HTTP caching conventions where they exist.

- `Cache-Control: no-cache` (don't read the cache, do store), `no-store` (don't store this answer),
  `max-age=N` (only accept an entry at most N seconds old); other directives are ignored.
- `X-Cache-TTL: <seconds>`, `X-Cache-Namespace: <name>`, `X-Cache-Similarity-Threshold: <0..1>`,
  `X-Cache-Mode: exact|semantic|off`.
An invalid value is a 400 that names the header.
"""

from __future__ import annotations

import math
import re

from starlette.datastructures import Headers

from services.gateway.errors import ApiError
from shared.contracts.completions import CacheControls

MAX_TTL_SECONDS = 365 * 24 * 3600
NAMESPACE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
MODES = ("exact", "semantic", "off")


def parse_cache_controls(headers: Headers) -> CacheControls:
    """The cache controls a request's headers ask for (defaults where a header is absent)."""
    read, store, max_age = True, True, None
    cache_control = headers.get("cache-control")
    if cache_control:
        for directive in (d.strip().lower() for d in cache_control.split(",")):
            name, _, value = directive.partition("=")
            name = name.strip()
            if name == "no-cache":
                read = False
            elif name == "no-store":
                store = False
            elif name == "max-age":
                max_age = _int(value.strip().strip('"'), "Cache-Control", "max-age", 0, MAX_TTL_SECONDS)

    ttl = headers.get("x-cache-ttl")
    namespace = headers.get("x-cache-namespace")
    threshold = headers.get("x-cache-similarity-threshold")
    mode = headers.get("x-cache-mode")
    if namespace is not None and not NAMESPACE.match(namespace):
        raise _invalid("X-Cache-Namespace", "1 to 64 letters, digits, '.', '_', ':' or '-'")
    if mode is not None and mode.strip().lower() not in MODES:
        raise _invalid("X-Cache-Mode", "one of exact, semantic, off")
    return CacheControls(
        read=read,
        store=store,
        max_age_seconds=max_age,
        ttl_seconds=_int(ttl, "X-Cache-TTL", "value", 1, MAX_TTL_SECONDS) if ttl is not None else None,
        namespace=namespace or "default",
        similarity_threshold=_threshold(threshold) if threshold is not None else None,
        mode=mode.strip().lower() if mode is not None else "semantic",  # type: ignore[arg-type]
    )


def _int(raw: str, header: str, what: str, low: int, high: int) -> int:
    # isascii: isdigit() also accepts "²" and other digits int() refuses.
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise _invalid(header, f"{what} as a whole number of seconds from {low} to {high}")
    return int(raw)


def _threshold(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:
        raise _invalid("X-Cache-Similarity-Threshold", "a number from 0 to 1")
    return value


def _invalid(header: str, expected: str) -> ApiError:
    return ApiError(
        400, f"Invalid {header} header: expected {expected}, got an invalid value.", code="invalid_header", param=header
    )
