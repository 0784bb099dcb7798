"""A hostile client at the edge, against the running gateway: huge, chunked and deeply nested bodies with
and without a key, sprays of random keys, and names PostgreSQL can't hold. The gateway answers with
a clear 4xx, early, without growing."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import aio_pika
import httpx
import pytest

from shared.topology import Topology
from tests.integration.stack import Stack

pytestmark = pytest.mark.integration

MODEL = "gpt-4o-mini"
MIB = 1024 * 1024


def reset_peak_rss(stack: Stack, name: str) -> None:
    """Start the process's high-water mark afresh (Linux: 5 > clear_refs), so earlier tests' peaks don't hide ours."""
    Path(f"/proc/{stack.processes[name].pid}/clear_refs").write_text("5")


def peak_rss_mib(stack: Stack, name: str) -> float:
    """The process's resident memory high-water mark (VmHWM): a spike shows even after it was freed."""
    for line in Path(f"/proc/{stack.processes[name].pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def empty_objects(size: int) -> bytes:
    """`[{},{},...]` of about `size` bytes: the JSON that costs a parser the most memory per byte."""
    return b"[" + b"{}," * (size // 3) + b"{}]"


def chunks(body: bytes, size: int = 256 * 1024) -> Iterator[bytes]:
    """The body as a generator: httpx sends it chunked, without a Content-Length."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


def dead_letters(stack: Stack) -> int:
    async def count() -> int:
        connection = await aio_pika.connect(stack.env["RABBITMQ_URL"])
        async with connection:
            channel = await connection.channel()
            queue = await channel.declare_queue(Topology(stack.prefix).dead_letters, passive=True)
            return queue.declaration_result.message_count or 0

    return asyncio.run(count())


def test_big_bodies_without_a_key_are_refused_before_they_are_read(stack: Stack) -> None:
    body = empty_objects(8 * MIB)
    targets = [
        "/api/v1/admin/tenants",
        "/api/v1/admin/keys",
        "/api/v1/admin/cache/invalidate",
        "/v1/chat/completions",
    ]
    reset_peak_rss(stack, "gateway")
    before = peak_rss_mib(stack, "gateway")

    async def send(path: str) -> tuple[int, float]:
        async with httpx.AsyncClient(base_url=stack.base_url, timeout=60) as client:
            started = time.monotonic()
            response = await client.post(path, content=body, headers={"content-type": "application/json"})
            return response.status_code, time.monotonic() - started

    async def all_at_once() -> list[tuple[int, float]]:
        return await asyncio.gather(*(send(path) for path in targets))

    results = asyncio.run(all_at_once())
    grew = peak_rss_mib(stack, "gateway") - before
    print(f"\n4 parallel 8 MiB bodies without a key: {results}, gateway peak memory +{grew:.0f} MiB")
    # Declared larger than MAX_BODY_BYTES: refused on its Content-Length, before even the key look-up.
    assert [status for status, _ in results] == [413] * len(targets)
    assert grew < 40, f"the gateway's peak memory grew by {grew:.0f} MiB"


def test_a_key_is_checked_before_the_body_is_parsed(stack: Stack) -> None:
    for path in ("/api/v1/admin/tenants", "/api/v1/admin/cache/invalidate", "/v1/chat/completions"):
        response = httpx.post(
            f"{stack.base_url}{path}", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert response.status_code == 401, (path, response.text)
        assert response.json()["error"]["type"] == "authentication_error"
    tenant_key = {**stack.auth, "content-type": "application/json"}
    response = httpx.post(f"{stack.base_url}/api/v1/admin/tenants", content=b"{not json", headers=tenant_key)
    assert response.status_code == 403, response.text  # a tenant's key: refused before its body is read


def test_a_chunked_upload_is_cut_off_at_the_limit(stack: Stack) -> None:
    reset_peak_rss(stack, "gateway")
    before = peak_rss_mib(stack, "gateway")
    started = time.monotonic()
    response = httpx.post(
        f"{stack.base_url}/v1/chat/completions",
        content=chunks(empty_objects(24 * MIB)),
        headers={**stack.auth, "content-type": "application/json"},
        timeout=60,
    )
    took = time.monotonic() - started
    grew = peak_rss_mib(stack, "gateway") - before
    print(f"\nchunked 24 MiB upload with a key: {response.status_code} after {took:.2f} s, peak memory +{grew:.0f} MiB")
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "request_too_large"
    assert grew < 20, f"the gateway's peak memory grew by {grew:.0f} MiB"
    admin = {"Authorization": f"Bearer {stack.env['ADMIN_API_KEY']}", "content-type": "application/json"}
    response = httpx.post(
        f"{stack.base_url}/api/v1/admin/tenants", content=chunks(empty_objects(8 * MIB)), headers=admin, timeout=60
    )
    assert response.status_code == 413, response.text


@pytest.mark.parametrize("depth", [220, 300])
def test_deeply_nested_bodies_are_a_400_at_the_edge(stack: Stack, depth: int) -> None:
    nested = "[" * depth + "]" * depth
    question = f"How deep? {uuid.uuid4().hex[:6]}"
    body = f'{{"model": "{MODEL}", "messages": [{{"role": "user", "content": "{question}"}}], "x": {nested}}}'
    before = dead_letters(stack)
    response = httpx.post(
        f"{stack.base_url}/v1/chat/completions",
        content=body.encode(),
        headers={**stack.auth, "content-type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "too_deeply_nested" and "nested" in error["message"]
    time.sleep(0.5)
    assert dead_letters(stack) == before, "the request reached a worker and was dead-lettered"


def key_resolutions(stack: Stack) -> float:
    """How many key look-ups the gateway sent to the tenants service (answered invalid) so far."""
    metrics = httpx.get(f"{stack.base_url}/metrics", timeout=5).text
    found = re.search(
        r'llmcache_gateway_key_resolutions_total\{result="invalid",source="tenants"\} ([0-9.e+]+)', metrics
    )
    return float(found.group(1)) if found else 0.0


def spray(stack: Stack, address: str, tokens: int) -> list[httpx.Response]:
    """Random bearer tokens from one client address (the test stack trusts X-Forwarded-For from loopback)."""

    async def send() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=stack.base_url, timeout=30) as client:
            responses = []
            for _ in range(tokens):
                headers = {"Authorization": f"Bearer lcp-{uuid.uuid4().hex}", "X-Forwarded-For": address}
                responses.append(await client.get("/v1/models", headers=headers))
            return responses

    return asyncio.run(send())


def test_failed_authentications_are_limited_per_client_address(stack: Stack) -> None:
    attacker = "203.0.113.7"
    valid = {**stack.auth, "X-Forwarded-For": attacker}
    assert httpx.get(f"{stack.base_url}/v1/models", headers=valid, timeout=15).status_code == 200
    before = key_resolutions(stack)
    responses = spray(stack, attacker, 80)
    statuses = [response.status_code for response in responses]
    looked_up = key_resolutions(stack) - before
    print(
        f"\n80 random keys from one address: {statuses.count(401)} x 401, {statuses.count(429)} x 429, "
        f"{looked_up:.0f} look-ups"
    )
    assert set(statuses) == {401, 429} and statuses[-1] == 429
    limited = responses[-1]
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.json()["error"]["type"] == "rate_limit_error"
    assert looked_up <= 40, f"{looked_up:.0f} random keys cost a tenants-service look-up each"
    # The key the address already used still works from it, also once its cached answer expired (checked
    # again: clients behind one NAT with the sprayer keep working); other addresses are not limited.
    assert httpx.get(f"{stack.base_url}/v1/models", headers=valid, timeout=15).status_code == 200
    time.sleep(float(stack.env.get("KEY_CACHE_TTL_SECONDS", "5")) + 0.5)
    assert httpx.get(f"{stack.base_url}/v1/models", headers=valid, timeout=15).status_code == 200
    other = spray(stack, "198.51.100.9", 1)[0]
    assert other.status_code == 401


def test_a_spray_of_unknown_keys_does_not_evict_known_ones(stack: Stack) -> None:
    """The test stack keeps 500 keys (KEY_CACHE_MAX_ENTRIES): 600 unknown keys from many addresses once
    evicted the valid key, and with it the stale answer that keeps it working while keys can't be checked."""
    assert int(stack.env["KEY_CACHE_MAX_ENTRIES"]) == 500
    assert httpx.get(f"{stack.base_url}/v1/models", headers=stack.auth, timeout=15).status_code == 200
    for i in range(30):
        spray(stack, f"192.0.2.{i + 1}", 20)
    stack.stop("tenants")
    try:
        time.sleep(float(stack.env.get("KEY_CACHE_TTL_SECONDS", "5")) + 0.5)  # the valid key's answer is stale now
        response = httpx.get(f"{stack.base_url}/v1/models", headers=stack.auth, timeout=15)
        assert response.status_code == 200, response.text
    finally:
        stack.start("tenants")
        stack.wait_ready()
