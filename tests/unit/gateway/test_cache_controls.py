"""Per-request cache controls: HTTP conventions, and a 400 naming the header for an invalid value."""

from __future__ import annotations

import pytest
from starlette.datastructures import Headers

from services.gateway.cache_controls import parse_cache_controls
from services.gateway.errors import ApiError


def controls(**headers: str):  # type: ignore[no-untyped-def]
    return parse_cache_controls(Headers({k.replace("_", "-"): v for k, v in headers.items()}))


def test_defaults() -> None:
    c = controls()
    assert (c.read, c.store, c.mode, c.namespace) == (True, True, "semantic", "default")
    assert c.ttl_seconds is None and c.max_age_seconds is None and c.similarity_threshold is None


def test_cache_control_directives() -> None:
    assert controls(cache_control="no-cache").read is False
    assert controls(cache_control="no-store").store is False
    both = controls(cache_control="No-Cache, no-store, max-age=30")
    assert (both.read, both.store, both.max_age_seconds) == (False, False, 30)
    assert controls(cache_control="max-age=0").max_age_seconds == 0
    assert controls(cache_control="private, must-revalidate").read is True  # unknown directives ignored


def test_cache_headers() -> None:
    c = controls(
        x_cache_ttl="60", x_cache_namespace="team-a", x_cache_similarity_threshold="0.95", x_cache_mode="EXACT"
    )
    assert (c.ttl_seconds, c.namespace, c.similarity_threshold, c.mode) == (60, "team-a", 0.95, "exact")


@pytest.mark.parametrize(
    "headers,named",
    [
        ({"cache_control": "max-age=soon"}, "Cache-Control"),
        ({"cache_control": "max-age=-1"}, "Cache-Control"),
        ({"x_cache_ttl": "0"}, "X-Cache-TTL"),
        ({"x_cache_ttl": "1.5"}, "X-Cache-TTL"),
        ({"x_cache_ttl": "99999999999"}, "X-Cache-TTL"),
        # Header bytes arrive as latin-1: "\xb2" is "²", which str.isdigit() accepts and int() does not.
        ({"x_cache_ttl": "\xb2"}, "X-Cache-TTL"),
        ({"cache_control": "max-age=\xb3"}, "Cache-Control"),
        ({"x_cache_namespace": "has space"}, "X-Cache-Namespace"),
        ({"x_cache_namespace": "x" * 65}, "X-Cache-Namespace"),
        ({"x_cache_similarity_threshold": "1.5"}, "X-Cache-Similarity-Threshold"),
        ({"x_cache_similarity_threshold": "nan"}, "X-Cache-Similarity-Threshold"),
        ({"x_cache_similarity_threshold": "high"}, "X-Cache-Similarity-Threshold"),
        ({"x_cache_mode": "sometimes"}, "X-Cache-Mode"),
    ],
)
def test_invalid_values_are_a_400_naming_the_header(headers: dict[str, str], named: str) -> None:
    with pytest.raises(ApiError) as raised:
        controls(**headers)
    assert raised.value.status == 400
    assert raised.value.param == named and named in raised.value.message
