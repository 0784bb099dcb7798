"""What the browser tests share: signing in as a user would, and traffic of a tenant of its own."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from tests.integration.stack import Stack
from tests.integration.test_accounting import new_tenant

MODEL = "gpt-4o-mini"
WATER = "What is the boiling point of water at sea level?"
WATER_PARAPHRASE = "What is water's boiling point at sea level?"


def sign_in(page, key: str) -> None:  # type: ignore[no-untyped-def]
    """Open the dashboard, type the key, press Enter; return once the pages' navigation shows."""
    page.goto("/dashboard/")
    page.get_by_label("API key").fill(key)
    page.get_by_label("API key").press("Enter")
    page.get_by_role("navigation", name="Pages").wait_for()


def admin_headers(stack: Stack) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.env['ADMIN_API_KEY']}"}


def chat(stack: Stack, headers: dict[str, str], messages: list[dict[str, Any]] | str, **extra: Any) -> httpx.Response:
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    response = httpx.post(
        f"{stack.base_url}/v1/chat/completions",
        json={"model": MODEL, "messages": messages, **extra},
        headers=headers,
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response


def tutor(tag: str, question: str) -> list[dict[str, Any]]:
    """A partition of its own (the system prompt), so tests never share entries."""
    return [{"role": "system", "content": f"You are a physics tutor ({tag})."}, {"role": "user", "content": question}]


@dataclass
class Traffic:
    """A tenant of its own and what it sent: a miss, a semantic hit, an exact hit and a bypass."""

    tenant: str
    headers: dict[str, str]
    key: str
    tag: str
    miss: httpx.Response
    semantic: httpx.Response
    exact: httpx.Response
    bypass: httpx.Response

    @property
    def sent(self) -> int:
        return 4


def make_traffic(stack: Stack, stored) -> Traffic:  # type: ignore[no-untyped-def]
    tenant, headers = new_tenant(stack)
    tag = uuid.uuid4().hex[:6]
    miss = chat(stack, headers, tutor(tag, WATER))
    stored(miss.headers["x-cache-key"])
    semantic = chat(stack, headers, tutor(tag, WATER_PARAPHRASE))
    assert semantic.headers.get("x-cache-match") == "semantic", semantic.headers
    exact = chat(stack, headers, tutor(tag, WATER))
    assert exact.headers.get("x-cache-match") == "exact"
    bypass = chat(stack, {**headers, "Cache-Control": "no-cache, no-store"}, tutor(tag, "Bypass me?"))
    assert bypass.headers["x-cache"] == "BYPASS"
    traffic = Traffic(tenant, headers, headers["Authorization"].split()[1], tag, miss, semantic, exact, bypass)
    wait_for_usage(stack, headers, traffic.sent)
    return traffic


def wait_for_usage(stack: Stack, headers: dict[str, str], rows: int, timeout: float = 15) -> None:
    """Usage events are written asynchronously: wait until the stats count `rows` requests."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stats = httpx.get(f"{stack.base_url}/api/v1/cache/stats", headers=headers, timeout=10).json()
        if stats["requests"] >= rows:
            return
        time.sleep(0.1)
    raise AssertionError(f"the usage log did not reach {rows} rows")


def no_horizontal_scroll(page) -> bool:  # type: ignore[no-untyped-def]
    """The page fits its viewport's width (tables scroll inside their own box)."""
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"))
