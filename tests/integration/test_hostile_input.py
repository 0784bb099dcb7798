"""A hostile client at the edge, against the running gateway: huge, chunked and deeply nested bodies with
and without a key, sprays of random keys, and names PostgreSQL can't hold. The gateway answers with
a clear 4xx, early, without growing."""

from __future__ import annotations

import asyncio
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
    assert [status for status, _ in results] == [401] * len(targets)
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
