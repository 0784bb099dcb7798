"""A short smoke of `make bench`'s load generator against the test stack: the benchmark is not a
timed test, but its harness must keep working (and its hit counting must see what the proxy says)."""

from __future__ import annotations

import uuid

import pytest

from bench.loadgen import run_load
from tests.conftest import MockUpstream
from tests.integration.stack import Stack

pytestmark = pytest.mark.integration


def test_the_load_generator_measures_exact_hits_without_upstream_calls(stack: Stack, mock: MockUpstream) -> None:
    body = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": f"bench smoke {uuid.uuid4().hex}: what is a cache?"}],
    }
    url = f"{stack.base_url}/v1/chat/completions"
    warm = run_load(url, stack.auth, [body], mode="cycle", connections=1, seconds=0.5)
    assert warm.failed == 0 and warm.requests >= 1
    calls_before = mock.stats()["chat_calls"]

    result = run_load(url, stack.auth, [body], mode="cycle", connections=4, seconds=1.5)

    assert result.failed == 0
    assert result.requests >= 20, result.as_dict()
    assert result.cache.get("HIT", 0) == result.requests, result.cache
    assert 0 < result.p50_ms <= result.p99_ms
    assert mock.stats()["chat_calls"] == calls_before
