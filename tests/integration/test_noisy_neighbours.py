"""Single flight under pressure, on the running system: requests waiting on an identical one in flight
hold no worker, one tenant can't take more than its share of the proxy, and the followers of a leader
that died take over within seconds."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
import uuid

import httpx
import pytest

from shared.topology import Topology
from tests.conftest import MockUpstream, wait_until
from tests.integration.stack import Stack
from tests.integration.test_accounting import new_tenant
from tests.integration.test_faults import broker_refuses

pytestmark = pytest.mark.integration

MODEL = "gpt-4o-mini"


def unique(text: str) -> str:
    return f"{text} [{uuid.uuid4().hex[:6]}]"


async def test_waiting_followers_hold_no_worker_and_a_tenant_gets_only_its_share(
    stack: Stack, mock: MockUpstream, stored
) -> None:
    _, alice = new_tenant(stack)
    _, bob = new_tenant(stack)
    bobs = {"model": MODEL, "messages": [{"role": "user", "content": unique("What is the capital of Peru?")}]}
    slow = unique("Tell me a long story about the moon [mock:slow] [mock:slow-stream]")
    alices = {"model": MODEL, "messages": [{"role": "user", "content": slow}]}
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=60) as client:
        first = await client.post("/v1/chat/completions", json=bobs, headers=bob)
        stored(first.headers["x-cache-key"], semantic=False)

        async def lead() -> float:
            started = time.monotonic()
            async with client.stream(
                "POST", "/v1/chat/completions", json={**alices, "stream": True}, headers=alice
            ) as r:
                assert r.headers["x-cache"] == "MISS"
                async for _ in r.aiter_lines():
                    pass
            return time.monotonic() - started

        leader = asyncio.create_task(lead())
        await asyncio.to_thread(wait_until, lambda: mock.stats()["calls_by_prompt"].get(slow), 10)
        followers = [
            asyncio.create_task(client.post("/v1/chat/completions", json=alices, headers=alice)) for _ in range(70)
        ]
        await asyncio.sleep(1)  # the followers are waiting on the leader by now
        latencies = []
        for _ in range(10):
            started = time.monotonic()
            hit = await client.post("/v1/chat/completions", json=bobs, headers=bob)
            latencies.append(time.monotonic() - started)
            assert hit.headers["x-cache"] == "HIT"
        streamed_for = await leader
        answers = await asyncio.gather(*followers)
    print(
        f"\nBob's exact hits while 70 of Alice's requests waited: worst {max(latencies) * 1000:.0f} ms"
        f" (Alice's stream took {streamed_for:.1f} s)"
    )
    assert streamed_for > 3, "the leader must still be in flight while Bob asks"
    assert max(latencies) < 1.0, f"another tenant's exact hits took up to {max(latencies):.1f} s"
    statuses = [answer.status_code for answer in answers]
    assert set(statuses) == {200, 429}, statuses
    refused = [answer for answer in answers if answer.status_code == 429]
    assert all(int(answer.headers["retry-after"]) >= 1 for answer in refused)
    assert refused[0].json()["error"]["code"] == "too_many_requests_in_flight"
    served = [answer for answer in answers if answer.status_code == 200]
    assert all(answer.headers.get("x-cache-coalesced") == "true" for answer in served)
    assert mock.stats()["calls_by_prompt"][slow] == 1


def test_followers_of_a_dead_leader_take_over_within_seconds(stack: Stack, mock: MockUpstream) -> None:
    """The leader's request is lost on its way to the LLM worker (as if it expired, or its worker died for
    good): its flight is never released. Identical requests behind it must not wait for its deadline."""
    question = unique("Which planet has the most moons?")
    body = {"model": MODEL, "messages": [{"role": "user", "content": question}]}
    url = f"{stack.base_url}/v1/chat/completions"
    llm_requests = Topology(stack.prefix).llm_request

    def lost_leader() -> None:
        try:
            httpx.post(url, json=body, headers=stack.auth, timeout=3)
        except httpx.TimeoutException:
            pass  # its request never reaches an LLM worker: nobody answers it

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        with broker_refuses(stack, llm_requests):  # the cache worker's forward of the leader is dropped
            leader = pool.submit(lost_leader)
            time.sleep(1)
        started = time.monotonic()
        followers = [pool.submit(httpx.post, url, json=body, headers=stack.auth, timeout=40) for _ in range(5)]
        answers = [follower.result() for follower in followers]
        took = time.monotonic() - started
        leader.result()
    print(f"\nfollowers of a dead leader answered after {took:.1f} s")
    assert [answer.status_code for answer in answers] == [200] * 5, [a.text[:200] for a in answers]
    assert took < 15, f"the followers of a dead leader waited {took:.1f} s"
    assert mock.stats()["calls_by_prompt"][question] == 1  # one of them took the lead: one upstream call
