"""What a caller can reach or set off that it should not: another tenant's entries through the admin API,
a fan-out of RPCs per unauthenticated /status call, an upstream call per /v1/models, a name the usage
log can't hold, and a production start with placeholder secrets."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from scripts.stack import ROOT
from tests.conftest import MockUpstream
from tests.integration.stack import Stack, free_port
from tests.integration.test_accounting import new_tenant

pytestmark = pytest.mark.integration

MODEL = "gpt-4o-mini"


def admin(stack: Stack) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.env['ADMIN_API_KEY']}"}


def chat(stack: Stack, headers: dict[str, str], question: str, **body: object) -> httpx.Response:
    return httpx.post(
        f"{stack.base_url}/v1/chat/completions",
        json={"model": MODEL, "messages": [{"role": "user", "content": question}], **body},
        headers=headers,
        timeout=30,
    )


def test_deleting_an_entry_for_another_tenant_deletes_nothing(stack: Stack, stored) -> None:
    alice_name, alice = new_tenant(stack)
    bob_name, _ = new_tenant(stack)
    question = f"What is the tallest mountain in Africa? {uuid.uuid4().hex[:6]}"
    first = chat(stack, alice, question)
    key = first.headers["x-cache-key"]
    stored(key)

    wrong = httpx.delete(
        f"{stack.base_url}/api/v1/admin/cache/entries/{key}", params={"tenant": bob_name}, headers=admin(stack)
    )
    assert wrong.status_code == 200 and wrong.json()["deleted"] == 0, wrong.text
    again = chat(stack, alice, question)
    assert (again.headers["x-cache"], again.headers.get("x-cache-match")) == ("HIT", "exact")

    right = httpx.delete(
        f"{stack.base_url}/api/v1/admin/cache/entries/{key}", params={"tenant": alice_name}, headers=admin(stack)
    )
    assert right.json()["deleted"] == 1
    assert chat(stack, alice, question).headers["x-cache"] == "MISS"


def control_queries_handled(stack: Stack) -> float:
    """How many control queries (health, model lists) the cache worker has answered so far."""
    metrics = httpx.get(f"http://127.0.0.1:{stack.metrics_ports['cache_worker']}/metrics", timeout=5).text
    pattern = r'llmcache_worker_messages_total\{[^}]*queue="[^"]*\.cache_worker\.control"[^}]*\} ([0-9.e+]+)'
    return sum(float(value) for value in re.findall(pattern, metrics))


def test_status_calls_do_not_each_fan_out_to_every_service(stack: Stack) -> None:
    before = control_queries_handled(stack)

    async def burst() -> list[int]:
        async with httpx.AsyncClient(base_url=stack.base_url, timeout=15) as client:
            responses = await asyncio.gather(*(client.get("/status") for _ in range(40)))
            return [response.status_code for response in responses]

    statuses = asyncio.run(burst())
    assert set(statuses) == {200}
    asked = control_queries_handled(stack) - before
    assert asked <= 2, f"40 /status calls asked the cache worker {asked:.0f} times"


def test_the_model_list_is_not_fetched_from_the_upstream_on_every_call(stack: Stack, mock: MockUpstream) -> None:
    before = mock.stats()["models_calls"]
    for _ in range(5):
        response = httpx.get(f"{stack.base_url}/v1/models", headers=stack.auth, timeout=15)
        assert response.status_code == 200 and response.json()["data"]
    fetched = mock.stats()["models_calls"] - before
    assert fetched <= 3, f"5 model lists made {fetched} upstream calls"  # at most once per upstream


def test_a_model_name_with_a_nul_byte_is_a_400(stack: Stack) -> None:
    for path, body in [
        ("/v1/chat/completions", {"model": "gpt-4o-mini\x00x", "messages": [{"role": "user", "content": "hi"}]}),
        ("/v1/messages", {"model": "claude-x\x00", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}),
        ("/v1/embeddings", {"model": "text-embedding-3-small\x00", "input": "hi"}),
    ]:
        response = httpx.post(f"{stack.base_url}{path}", json=body, headers=stack.auth, timeout=30)
        assert response.status_code == 400, (path, response.text)
        assert "model" in response.text


def test_production_refuses_placeholder_secrets(stack: Stack, tmp_path: Path) -> None:
    """`ENVIRONMENT=production ADMIN_API_KEY=change-me` must not start a gateway that accepts `change-me`."""
    port = free_port()
    env = {
        **stack.env,
        "ENVIRONMENT": "production",
        "ADMIN_API_KEY": "change-me",
        "GATEWAY_PORT": str(port),  # another gateway replica of the stack, on a port of its own
    }
    log = tmp_path / "gateway.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.gateway.main"], cwd=ROOT, env=env, stdout=out, stderr=out
        )
    try:
        deadline = time.monotonic() + 30
        while process.poll() is None and time.monotonic() < deadline:
            try:
                answer = httpx.get(
                    f"http://127.0.0.1:{port}/api/v1/admin/tenants",
                    headers={"Authorization": "Bearer change-me"},
                    timeout=5,
                )
            except httpx.HTTPError:
                time.sleep(0.2)
                continue
            pytest.fail(f"the gateway started in production with ADMIN_API_KEY=change-me and answered {answer}")
        assert process.returncode not in (None, 0)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
    output = log.read_text()
    # Every placeholder at once: the admin key, and RabbitMQ's guest password.
    assert "ADMIN_API_KEY" in output and "RABBITMQ_URL" in output, output[-2000:]
    assert "change-me" not in output.replace("ADMIN_API_KEY=change-me", "")  # the secret itself is not echoed
