"""Tenants through the whole system: isolation of their cache entries, no usage event lost, cost and
tokens accounted, stats and usage scoped to the caller."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import wait_until
from tests.integration.stack import Stack

pytestmark = pytest.mark.integration

MODEL = "gpt-4o-mini"


def new_tenant(stack: Stack) -> tuple[str, dict[str, str]]:
    """A fresh tenant and the headers of a key of its own (made through the admin API)."""
    admin = {"Authorization": f"Bearer {stack.env['ADMIN_API_KEY']}"}
    name = f"t-{uuid.uuid4().hex[:10]}"
    assert httpx.post(f"{stack.base_url}/api/v1/admin/tenants", json={"name": name}, headers=admin).status_code == 201
    created = httpx.post(f"{stack.base_url}/api/v1/admin/keys", json={"tenant": name, "name": "test"}, headers=admin)
    assert created.status_code == 201
    return name, {"Authorization": f"Bearer {created.json()['key']}"}


def ask(stack: Stack, headers: dict[str, str], question: str, **body: Any) -> httpx.Response:
    response = httpx.post(
        f"{stack.base_url}/v1/chat/completions",
        json={"model": MODEL, "messages": [{"role": "user", "content": question}], **body},
        headers=headers,
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response


def test_tenants_never_get_each_others_entries(stack: Stack, stored) -> None:
    _, alice = new_tenant(stack)
    _, bob = new_tenant(stack)
    question = "What is the boiling point of water at sea level?"
    first = ask(stack, alice, question)
    stored(first.headers["x-cache-key"])
    assert ask(stack, alice, "What is water's boiling point at sea level?").headers["x-cache"] == "HIT"

    # Bob asks the paraphrase, then the very same question: neither may come from Alice's entries.
    assert ask(stack, bob, "What is water's boiling point at sea level?").headers["x-cache"] == "MISS"
    bobs = ask(stack, bob, question, temperature=1.0)  # same prompt, other parameters: a new exact key
    assert bobs.headers["x-cache"] == "MISS"
    again = ask(stack, bob, question)
    # Whatever Bob gets now comes from his own entries: a hit names the entry it came from.
    assert again.headers["x-cache-key"] != first.headers["x-cache-key"]


def test_no_usage_event_is_lost_and_totals_match(stack: Stack, stored) -> None:
    tenant, key = new_tenant(stack)
    results: dict[str, int] = {"MISS": 0, "exact": 0, "semantic": 0}
    tokens_saved = 0
    questions = [f"Question number {i} about topic {uuid.uuid4().hex[:6]}?" for i in range(8)]
    sent = 0
    for question in questions:
        first = ask(stack, key, question)
        sent += 1
        results["MISS"] += 1
        stored(first.headers["x-cache-key"], semantic=False)
        for _ in range(3):
            hit = ask(stack, key, question)
            sent += 1
            assert hit.headers["x-cache"] == "HIT"
            results[hit.headers["x-cache-match"]] += 1
            tokens_saved += hit.json()["usage"]["total_tokens"]
    streamed = httpx.post(
        f"{stack.base_url}/v1/chat/completions",
        json={"model": MODEL, "messages": [{"role": "user", "content": questions[0]}], "stream": True},
        headers=key,
        timeout=30,
    )
    assert streamed.status_code == 200 and streamed.headers["x-cache"] == "HIT"
    sent += 1
    results["exact"] += 1

    def usage_rows() -> list[dict[str, Any]]:
        rows, cursor = [], None
        while True:
            params = {"limit": 7, **({"cursor": cursor} if cursor else {})}
            page = httpx.get(f"{stack.base_url}/api/v1/usage", params=params, headers=key, timeout=10).json()
            rows += page["data"]
            cursor = page.get("next_cursor")
            if not page.get("has_more"):
                return rows

    rows = wait_until(lambda: (r := usage_rows()) and len(r) >= sent and r, timeout=15)
    time.sleep(0.5)  # and no more arrive
    rows = usage_rows()
    assert len(rows) == sent
    assert len({row["event_id"] for row in rows}) == sent
    assert all(row["tenant"] == tenant for row in rows)

    stats = httpx.get(f"{stack.base_url}/api/v1/cache/stats", headers=key, timeout=10).json()
    assert stats["requests"] == sent
    assert stats["misses"] == results["MISS"]
    assert stats["hits_exact"] == results["exact"]
    assert stats["hits"] == results["exact"] + results["semantic"]
    assert stats["hit_rate"] == pytest.approx(stats["hits"] / sent, abs=1e-3)
    misses = [row for row in rows if row["result"] == "miss"]
    hits = [row for row in rows if row["result"].startswith("hit")]
    assert all(row["cost_usd"] > 0 and row["prompt_tokens"] > 0 for row in misses), "gpt-4o-mini has a price"
    assert all(row["cost_saved_usd"] > 0 and row["tokens_saved"] > 0 for row in hits)
    assert stats["tokens_saved"] >= tokens_saved
    assert stats["cost_saved_usd"] == pytest.approx(sum(row["cost_saved_usd"] for row in hits), rel=1e-6)
    assert stats["latency_ms"]["p50"] is not None


def test_stats_and_usage_are_scoped_to_the_caller(stack: Stack) -> None:
    alice_name, alice = new_tenant(stack)
    bob_name, _ = new_tenant(stack)
    ask(stack, alice, f"Scoped question {uuid.uuid4().hex}")
    forbidden = httpx.get(f"{stack.base_url}/api/v1/cache/stats", params={"tenant": bob_name}, headers=alice)
    assert forbidden.status_code == 403 and forbidden.json()["error"]["type"] == "permission_error"
    usage = httpx.get(f"{stack.base_url}/api/v1/usage", params={"tenant": bob_name}, headers=alice)
    assert usage.status_code == 403
    admin = {"Authorization": f"Bearer {stack.env['ADMIN_API_KEY']}"}
    everyone = httpx.get(f"{stack.base_url}/api/v1/cache/stats", headers=admin).json()
    assert everyone["tenant"] is None
    alice_only = wait_until(
        lambda: (
            (
                s := httpx.get(f"{stack.base_url}/api/v1/cache/stats", params={"tenant": alice_name}, headers=admin)
            ).json()["requests"]
            == 1
            and s
        ),
        timeout=10,
    )
    assert alice_only.json()["tenant"] == alice_name


def test_admin_endpoints_refuse_tenant_keys(stack: Stack) -> None:
    _, key = new_tenant(stack)
    for method, path in [
        ("GET", "/api/v1/admin/tenants"),
        ("GET", "/api/v1/admin/keys"),
        ("GET", "/api/v1/admin/cache/entries?tenant=dev"),
        ("DELETE", "/api/v1/admin/cache/tenants/dev"),
    ]:
        response = httpx.request(method, f"{stack.base_url}{path}", headers=key)
        assert response.status_code == 403, path
        assert response.json()["error"]["type"] == "permission_error"


def test_a_streamed_miss_counts_against_the_daily_token_limit(stack: Stack) -> None:
    admin = {"Authorization": f"Bearer {stack.env['ADMIN_API_KEY']}"}
    name = f"t-{uuid.uuid4().hex[:10]}"
    httpx.post(f"{stack.base_url}/api/v1/admin/tenants", json={"name": name}, headers=admin)
    created = httpx.post(
        f"{stack.base_url}/api/v1/admin/keys", json={"tenant": name, "name": "t", "tokens_per_day": 10}, headers=admin
    ).json()
    key = {"Authorization": f"Bearer {created['key']}"}
    body = {"model": MODEL, "messages": [{"role": "user", "content": f"Stream me {uuid.uuid4().hex}"}], "stream": True}
    with httpx.stream("POST", f"{stack.base_url}/v1/chat/completions", json=body, headers=key, timeout=30) as r:
        assert r.status_code == 200 and r.headers["x-cache"] == "MISS"
        list(r.iter_lines())
    over = httpx.post(
        f"{stack.base_url}/v1/chat/completions",
        json={**body, "stream": False, "messages": [{"role": "user", "content": "another"}]},
        headers=key,
        timeout=30,
    )
    assert over.status_code == 429 and int(over.headers["retry-after"]) >= 1


def test_an_abandoned_stream_counts_the_tokens_sent_against_the_daily_token_limit(stack: Stack) -> None:
    admin = {"Authorization": f"Bearer {stack.env['ADMIN_API_KEY']}"}
    name = f"t-{uuid.uuid4().hex[:10]}"
    httpx.post(f"{stack.base_url}/api/v1/admin/tenants", json={"name": name}, headers=admin)
    created = httpx.post(
        f"{stack.base_url}/api/v1/admin/keys", json={"tenant": name, "name": "t", "tokens_per_day": 10}, headers=admin
    ).json()
    key = {"Authorization": f"Bearer {created['key']}"}
    question = f"Tell me a long story about the sea, please {uuid.uuid4().hex} [mock:slow-stream]"
    body = {"model": MODEL, "messages": [{"role": "user", "content": question}], "stream": True}
    with httpx.stream("POST", f"{stack.base_url}/v1/chat/completions", json=body, headers=key, timeout=30) as r:
        assert r.status_code == 200 and r.headers["x-cache"] == "MISS"
        events = (line for line in r.iter_lines() if line.startswith("data: "))
        for _ in range(3):  # a few deltas, then the client goes away
            next(events)
    time.sleep(1)  # the gateway counts the tokens sent when it notices the client has gone
    over = httpx.post(
        f"{stack.base_url}/v1/chat/completions",
        json={**body, "stream": False, "messages": [{"role": "user", "content": "another"}]},
        headers=key,
        timeout=30,
    )
    assert over.status_code == 429, over.text
    assert int(over.headers["retry-after"]) >= 1
