"""Failures as users meet them, on the running system: upstream errors retried then passed on, a
worker killed mid-request, the embedder down, poison messages, and nothing secret in the logs."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator

import aio_pika
import httpx
import openai
import pytest

from shared.topology import Topology
from tests.conftest import MockUpstream, wait_until
from tests.integration.stack import Stack
from tests.integration.test_accounting import new_tenant

pytestmark = pytest.mark.integration

MODEL = "gpt-4o-mini"


def ask(stack: Stack, question: str, timeout: float = 30, **body: object) -> httpx.Response:
    return httpx.post(
        f"{stack.base_url}/v1/chat/completions",
        json={"model": MODEL, "messages": [{"role": "user", "content": question}], **body},
        headers=stack.auth,
        timeout=timeout,
    )


def unique(text: str) -> str:
    return f"{text} [{uuid.uuid4().hex[:6]}]"


def test_a_transient_upstream_error_is_retried_and_answered(stack: Stack, mock: MockUpstream) -> None:
    calls = mock.chat_calls()
    mock.fail(503, count=1, retry_after=0.1)
    started = time.monotonic()
    response = ask(stack, unique("Retry me"))
    print(f"\nupstream 503 once: answered after {time.monotonic() - started:.2f} s")
    assert response.status_code == 200 and response.headers["x-cache"] == "MISS"
    assert mock.chat_calls() == calls + 2  # the failure, then the retry


def test_a_persistent_429_is_passed_on_with_its_status_after_the_retry_budget(stack: Stack, mock: MockUpstream) -> None:
    calls = mock.chat_calls()
    mock.fail(429, count=-1, retry_after=0.1)
    try:
        started = time.monotonic()
        response = ask(stack, unique("Rate limited"))
        print(f"\nupstream 429 that persists: the 429 after {time.monotonic() - started:.2f} s")
    finally:
        mock.clear_faults()
    assert response.status_code == 429
    assert response.json()["error"]["message"]
    assert response.headers["retry-after"] == "1"  # the upstream's 0.1 s, in whole seconds
    assert mock.chat_calls() == calls + 3  # the call and its two retries (UPSTREAM_MAX_RETRIES=2)


def test_a_worker_killed_mid_request_is_replaced_and_the_request_answered(stack: Stack, mock: MockUpstream) -> None:
    question = unique("A slow question [mock:slow]")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        started = time.monotonic()
        pending = pool.submit(ask, stack, question, 60)
        wait_until(lambda: mock.stats()["calls_by_prompt"].get(question), timeout=10)
        victim = stack.processes["llm_worker"]
        os.kill(victim.pid, signal.SIGKILL)  # mid-request: the upstream call is in flight, nothing acked
        victim.wait()
        stack.processes.pop("llm_worker")
        stack.start("llm_worker")  # the replacement picks the redelivered request up
        response = pending.result(timeout=60)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"]
    assert mock.stats()["calls_by_prompt"][question] == 2
    took = time.monotonic() - started
    assert took < 30
    print(f"\nllm_worker SIGKILLed mid-request: answered after {took:.1f} s (2 upstream calls)")
    stack.wait_ready()


def test_with_the_embedder_down_exact_hits_and_misses_still_work(stack: Stack, mock: MockUpstream, stored) -> None:
    question = unique("Which element has atomic number 6?")
    first = ask(stack, question)
    stored(first.headers["x-cache-key"])
    stack.stop("embedder")
    try:
        # /status answers from its last fan-out for a second.
        status = wait_until(lambda: (r := httpx.get(f"{stack.base_url}/status", timeout=15)).status_code == 503 and r)
        assert status.json()["services"]["embedder"]["ok"] is False
        # The gateway itself can still serve: it stays in the load balancer.
        assert httpx.get(f"{stack.base_url}/readyz", timeout=5).status_code == 200
        started = time.monotonic()
        hit = ask(stack, question)
        took_hit = time.monotonic() - started
        assert (hit.headers["x-cache"], hit.headers["x-cache-match"]) == ("HIT", "exact")
        calls = mock.chat_calls()
        started = time.monotonic()
        miss = ask(stack, unique("Which element has atomic number 7?"))
        print(
            f"\nembedder down: an exact hit in {took_hit:.2f} s, a miss (BYPASS) in {time.monotonic() - started:.2f} s"
        )
        assert miss.status_code == 200 and miss.headers["x-cache"] == "BYPASS"
        assert miss.headers["x-cache-bypass-reason"] == "embedder_unavailable"
        assert mock.chat_calls() == calls + 1
        lookups = httpx.get(f"http://127.0.0.1:{stack.metrics_ports['cache_worker']}/metrics").text
        assert 'llmcache_cache_dependency_failures_total{dependency="embedder",operation="lookup"}' in lookups
    finally:
        stack.start("embedder")
        stack.wait_ready()


def test_poison_messages_are_dead_lettered_and_the_worker_keeps_serving(stack: Stack) -> None:
    topology = Topology(stack.prefix)

    async def poison_and_collect() -> list[aio_pika.abc.AbstractIncomingMessage]:
        connection = await aio_pika.connect(stack.env["RABBITMQ_URL"])
        async with connection:
            channel = await connection.channel()
            for body in (b"{not json", b'{"v": 99, "type": "completion_request"}', b"\xff\xfe"):
                await channel.default_exchange.publish(aio_pika.Message(body), routing_key=topology.cache_lookup)
            dead = await channel.get_queue(topology.dead_letters)
            found = []
            deadline = time.monotonic() + 10
            while len(found) < 3 and time.monotonic() < deadline:
                message = await dead.get(fail=False)
                if message is None:
                    await asyncio.sleep(0.05)
                    continue
                await message.ack()
                if message.headers.get("x-original-queue") == topology.cache_lookup:
                    found.append(message)
            return found

    dead = asyncio.run(poison_and_collect())
    assert len(dead) == 3
    assert all(str(m.headers["x-dead-letter-reason"]).startswith("unreadable") for m in dead)
    assert stack.processes["cache_worker"].poll() is None
    assert ask(stack, unique("Still there?")).status_code == 200


def test_prompts_answers_and_keys_never_reach_the_logs(stack: Stack) -> None:
    secret_prompt = unique("My secret prompt is blue-elephant-42")
    response = ask(stack, secret_prompt)
    answer = response.json()["choices"][0]["message"]["content"]
    time.sleep(1)
    for name in stack.processes:
        logs = stack.logs(name)
        assert "blue-elephant-42" not in logs, name
        assert answer not in logs, name
        assert stack.env["DEV_API_KEY"] not in logs, name
        assert stack.env["ADMIN_API_KEY"] not in logs, name
        assert "Traceback" not in logs, name


def test_bad_bodies_get_clear_4xx_in_openai_format(stack: Stack) -> None:
    url = f"{stack.base_url}/v1/chat/completions"
    headers = {**stack.auth, "content-type": "application/json"}
    huge = b'{"model": "m", "messages": [{"role": "user", "content": "' + b"x" * (5 * 1024 * 1024) + b'"}]}'
    too_many = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}] * 10_001}
    cases = [
        (huge, 413),
        (b'{"model": "m", "messages": [{"role": "user", "content": "\xff\xfe"}]}', 400),  # invalid UTF-8
        (httpx.Request("POST", url, json=too_many).content, 400),
        (b'{"model": "m", "messages": [{"role": "wizard", "content": "hi"}]}', 400),
        (b'{"model": "m", "messages": [{"role": "user", "content": 42}]}', 400),
        (b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": "yes"}', 400),
        (b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "n": 0}', 400),
    ]
    for body, status in cases:
        response = httpx.post(url, content=body, headers=headers, timeout=30)
        assert response.status_code == status, (body[:80], response.text[:200])
        error = response.json()["error"]
        assert error["type"] == "invalid_request_error" and error["message"]


def test_unknown_fields_are_passed_through_to_the_upstream(stack: Stack) -> None:
    response = ask(stack, unique("Unknown fields?"), some_future_parameter={"a": 1})
    assert response.status_code == 200


@contextlib.contextmanager
def broker_refuses(stack: Stack, *queues: str) -> Iterator[None]:
    """RabbitMQ nacks every publish to these queues (a policy: max-length 0, reject-publish) until the block ends."""
    name = f"refuse-{uuid.uuid4().hex[:8]}"
    pattern = "^(" + "|".join(re.escape(queue) for queue in queues) + ")$"
    definition = '{"max-length": 0, "overflow": "reject-publish"}'
    rabbitmqctl = ["rabbitmqctl", "-q"]
    subprocess.run([*rabbitmqctl, "set_policy", "--apply-to", "queues", name, pattern, definition], check=True)
    try:
        time.sleep(1)  # the policy reaches the queues
        yield
    finally:
        subprocess.run([*rabbitmqctl, "clear_policy", name], check=True)


def test_usage_and_store_events_are_not_lost_when_publishing_them_fails(stack: Stack, stored) -> None:
    if shutil.which("rabbitmqctl") is None:
        pytest.skip("rabbitmqctl is needed to make the broker refuse publishes")
    _, key = new_tenant(stack)
    topology = Topology(stack.prefix)
    body = {"model": MODEL, "messages": [{"role": "user", "content": unique("What is the speed of sound in air?")}]}
    url = f"{stack.base_url}/v1/chat/completions"

    def usage_rows() -> int:
        page = httpx.get(f"{stack.base_url}/api/v1/usage", params={"limit": 50}, headers=key, timeout=10).json()
        return len(page["data"])

    first = httpx.post(url, json=body, headers=key, timeout=30)
    stored(first.headers["x-cache-key"], semantic=False)
    wait_until(lambda: usage_rows() == 1)
    with broker_refuses(stack, topology.usage_events, topology.cache_store):
        hit = httpx.post(url, json=body, headers=key, timeout=30)  # its usage event is refused
        miss = httpx.post(url, json={**body, "temperature": 0.5}, headers=key, timeout=30)  # usage and store refused
        assert hit.headers["x-cache"] == "HIT" and miss.headers["x-cache"] == "MISS"
        time.sleep(2)
        assert usage_rows() == 1
    # Published once the broker takes them again: each request counted once, the miss's answer stored.
    wait_until(lambda: usage_rows() == 3, timeout=30)
    stored(miss.headers["x-cache-key"], semantic=False)
    time.sleep(1)
    assert usage_rows() == 3


def test_a_stream_cut_by_a_killed_worker_ends_with_an_error_and_repeats_nothing(
    stack: Stack, mock: MockUpstream, client: openai.OpenAI
) -> None:
    question = unique("Tell me a long story about a lighthouse [mock:slow-stream]")
    stream = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": question}], stream=True)
    ids, text = set(), []
    chunks = iter(stream)
    for _ in range(4):  # the first deltas reach the client
        chunk = next(chunks)
        ids.add(chunk.id)
        text.extend(choice.delta.content or "" for choice in chunk.choices)
    victim = stack.processes.pop("llm_worker")
    os.kill(victim.pid, signal.SIGKILL)  # mid-stream: the request is redelivered to the replacement
    victim.wait()
    stack.start("llm_worker")
    try:
        with pytest.raises(openai.APIError) as interrupted:
            for chunk in chunks:
                ids.add(chunk.id)
                text.extend(choice.delta.content or "" for choice in chunk.choices)
        assert "interrupted" in str(interrupted.value)
        assert len(ids) == 1, f"the client got the answer again under another id: {ids}"
        whole = httpx.post(
            f"{stack.mock_url}/v1/chat/completions",
            json={"model": MODEL, "messages": [{"role": "user", "content": question}]},
            timeout=30,
        ).json()["choices"][0]["message"]["content"]
        assert whole.startswith("".join(text)), "what the client read is not a prefix of the answer"
    finally:
        stream.close()
        stack.wait_ready()
