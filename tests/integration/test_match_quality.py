"""Semantic match quality through the real services: the hit verifier refuses look-alikes, counts the
refusals by reason, and still serves the same question typed again."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.integration.stack import Stack

pytestmark = pytest.mark.integration

MODEL = "gpt-4o-mini"


def ask(stack: Stack, tag: str, question: str) -> httpx.Response:
    """A question in a partition of its own (the system prompt), so tests never share entries."""
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": f"You are a unit converter ({tag})."},
        {"role": "user", "content": question},
    ]
    return httpx.post(
        f"{stack.base_url}/v1/chat/completions",
        json={"model": MODEL, "messages": messages},
        headers=stack.auth,
        timeout=30,
    )


def refused(stack: Stack, reason: str) -> float:
    text = httpx.get(f"http://127.0.0.1:{stack.metrics_ports['cache_worker']}/metrics", timeout=5).text
    prefix = f'llmcache_cache_refused_candidates_total{{reason="{reason}"}} '
    return sum(float(line.removeprefix(prefix)) for line in text.splitlines() if line.startswith(prefix))


def test_a_look_alike_with_another_number_misses_and_is_counted(stack: Stack, stored) -> None:
    tag = uuid.uuid4().hex[:6]
    first = ask(stack, tag, "Convert 5 miles to km")
    stored(first.headers["x-cache-key"])
    before = refused(stack, "number_mismatch")

    other = ask(stack, tag, "Convert 50 miles to km")
    assert other.headers["x-cache"] == "MISS"
    assert other.json()["choices"][0]["message"]["content"] != first.json()["choices"][0]["message"]["content"]
    assert refused(stack, "number_mismatch") == before + 1

    same = ask(stack, tag, "hi, convert 5 miles to km please")
    assert (same.headers["x-cache"], same.headers["x-cache-match"]) == ("HIT", "semantic")
