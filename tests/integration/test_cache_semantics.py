"""Cache semantics users rely on, through the real services: partitions, conversations, per-request
controls, response headers, streaming, what is never cached, single flight, lifetime, browsing and
invalidation, and the reasons kept in stats and metrics."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import psycopg
import pytest
import redis

from tests.conftest import MockUpstream, wait_until
from tests.integration.stack import Stack

pytestmark = pytest.mark.integration

MODEL = "gpt-4o-mini"


def unique(text: str) -> str:
    return f"{text} [{uuid.uuid4().hex[:6]}]"


def chat(
    stack: Stack, messages: list[dict[str, Any]] | str, headers: dict[str, str] | None = None, **body: Any
) -> httpx.Response:
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    return httpx.post(
        f"{stack.base_url}/v1/chat/completions",
        json={"model": MODEL, "messages": messages, **body},
        headers={**stack.auth, **(headers or {})},
        timeout=30,
    )


def tutor(tag: str, question: str) -> list[dict[str, Any]]:
    """A conversation of a partition of its own (the system prompt), so tests never share entries."""
    return [{"role": "system", "content": f"You are a physics tutor ({tag})."}, {"role": "user", "content": question}]


WATER = "What is the boiling point of water at sea level?"
WATER_PARAPHRASE = "What is water's boiling point at sea level?"


def admin(stack: Stack) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.env['ADMIN_API_KEY']}"}


# 1. partitions --------------------------------------------------------------------------------------


def test_semantic_hits_stay_inside_namespace_model_and_parameters(stack: Stack, stored) -> None:
    tag = uuid.uuid4().hex[:6]
    first = chat(stack, tutor(tag, WATER), {"X-Cache-Namespace": "team-a"})
    assert first.headers["x-cache"] == "MISS"
    stored(first.headers["x-cache-key"])

    same = chat(stack, tutor(tag, WATER_PARAPHRASE), {"X-Cache-Namespace": "team-a"})
    assert (same.headers["x-cache"], same.headers["x-cache-match"]) == ("HIT", "semantic")
    assert chat(stack, tutor(tag, WATER_PARAPHRASE), {"X-Cache-Namespace": "team-b"}).headers["x-cache"] == "MISS"
    other_model = httpx.post(
        f"{stack.base_url}/v1/chat/completions",
        json={"model": "gpt-4o", "messages": tutor(tag, WATER_PARAPHRASE)},
        headers={**stack.auth, "X-Cache-Namespace": "team-a"},
        timeout=30,
    )
    assert other_model.headers["x-cache"] == "MISS"
    hotter = chat(stack, tutor(tag, WATER_PARAPHRASE), {"X-Cache-Namespace": "team-a"}, temperature=0.9)
    assert hotter.headers["x-cache"] == "MISS"


# 2. conversations -----------------------------------------------------------------------------------


def test_the_same_last_message_in_another_conversation_does_not_hit(stack: Stack, stored) -> None:
    tag = uuid.uuid4().hex[:6]

    def conversation(situation: str) -> list[dict[str, Any]]:
        return [
            {"role": "user", "content": f"{situation} ({tag})"},
            {"role": "assistant", "content": "I can do that. Shall I go ahead?"},
            {"role": "user", "content": "Yes, cancel it."},
        ]

    gym = chat(stack, conversation("Please cancel my gym membership."))
    assert gym.headers["x-cache"] == "MISS"
    stored(gym.headers["x-cache-key"])
    assert chat(stack, conversation("Please cancel my gym membership.")).headers["x-cache"] == "HIT"
    flight = chat(stack, conversation("Please cancel my flight to Rome tomorrow."))
    assert flight.headers["x-cache"] == "MISS"
    assert flight.json()["choices"][0]["message"]["content"] != gym.json()["choices"][0]["message"]["content"]


def test_a_history_typed_again_or_with_a_greeting_more_hits_and_another_situation_does_not(
    stack: Stack, stored
) -> None:
    tag = uuid.uuid4().hex[:6]

    def conversation(
        opening: str, last: str = "It still does not work. What next?", greeting: bool = False
    ) -> list[dict[str, Any]]:
        hello = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello! How can I help?"}]
        return [
            {"role": "system", "content": f"You are a tech support agent ({tag})."},
            *(hello if greeting else []),
            {"role": "user", "content": opening},
            {"role": "assistant", "content": "Try holding the power button for 30 seconds."},
            {"role": "user", "content": last},
        ]

    first = chat(stack, conversation("My laptop will not turn on after the update."))
    stored(first.headers["x-cache-key"])
    # Every earlier turn the same text once case, spaces and punctuation are set aside: the last message
    # is compared by meaning.
    again = chat(
        stack, conversation("my laptop will not turn on after the update", "It still doesn't work, what next?")
    )
    assert (again.headers["x-cache"], again.headers["x-cache-match"]) == ("HIT", "semantic")
    # A greeting more changes nothing the answer depends on (the default, aligned match).
    greeted = chat(stack, conversation("My laptop will not turn on after the update.", greeting=True))
    assert (greeted.headers["x-cache"], greeted.headers["x-cache-match"]) == ("HIT", "semantic")
    # Another device in the same place is another situation.
    phone = chat(stack, conversation("My phone will not charge since I dropped it in water."))
    assert phone.headers["x-cache"] == "MISS"


def test_a_history_that_differs_anywhere_does_not_hit(stack: Stack, stored) -> None:
    """Another width in the first turn, or another name 1,800 characters before the question: another answer."""
    tag = uuid.uuid4().hex[:6]

    def rectangle(width: int) -> list[dict[str, Any]]:
        return [
            {"role": "system", "content": f"You are a geometry tutor ({tag})."},
            {"role": "user", "content": f"A rectangle is 8 cm long and {width} cm wide."},
            {"role": "assistant", "content": "Okay, got it."},
            {"role": "user", "content": "What's its perimeter?"},
        ]

    first = chat(stack, rectangle(5))
    stored(first.headers["x-cache-key"])
    assert chat(stack, rectangle(5)).headers["x-cache"] == "HIT"
    assert chat(stack, rectangle(6)).headers["x-cache"] == "MISS"

    background = "Here is some background on the project I am working on this quarter. " * 26

    def introduce(name: str) -> list[dict[str, Any]]:
        return [
            {"role": "system", "content": f"You are a helpful assistant ({tag})."},
            {"role": "user", "content": f"My name is {name}. {background}"},
            {"role": "assistant", "content": "Thanks, noted."},
            {"role": "user", "content": "What is my name?"},
        ]

    alice = chat(stack, introduce("Alice Smith"))
    stored(alice.headers["x-cache-key"])
    assert len(introduce("Alice Smith")[1]["content"]) > 1800
    assert chat(stack, introduce("Alice Smith")).headers["x-cache"] == "HIT"
    bob = chat(stack, introduce("Bob Jones"))
    assert bob.headers["x-cache"] == "MISS"


# 3. and 4. per-request controls and response headers ------------------------------------------------


def test_no_cache_skips_reading_but_stores(stack: Stack, mock: MockUpstream, stored) -> None:
    question = unique("What is the tallest mountain?")
    first = chat(stack, question)
    stored(first.headers["x-cache-key"], semantic=False)
    calls = mock.chat_calls()
    fresh = chat(stack, question, {"Cache-Control": "no-cache"})
    assert fresh.headers["x-cache"] == "BYPASS"
    assert fresh.headers["x-cache-bypass-reason"] == "cache_control_no_cache"
    assert fresh.headers["x-cache-key"] == first.headers["x-cache-key"]
    assert mock.chat_calls() == calls + 1
    assert chat(stack, question).headers["x-cache"] == "HIT"


def test_no_store_answers_but_stores_nothing(stack: Stack, redis_client: redis.Redis) -> None:
    question = unique("What is the longest river?")
    first = chat(stack, question, {"Cache-Control": "no-store"})
    assert first.headers["x-cache"] == "MISS"
    time.sleep(0.5)
    assert not redis_client.exists(f"{stack.env['REDIS_PREFIX']}:exact:{first.headers['x-cache-key']}")
    assert chat(stack, question).headers["x-cache"] == "MISS"


def test_max_age_only_accepts_younger_entries(stack: Stack, stored) -> None:
    question = unique("What is the speed of light?")
    stored(chat(stack, question).headers["x-cache-key"], semantic=False)
    time.sleep(2.1)
    old = chat(stack, question, {"Cache-Control": "max-age=1"})
    assert old.headers["x-cache"] == "MISS"
    stored(old.headers["x-cache-key"], semantic=False)
    young = chat(stack, question, {"Cache-Control": "max-age=60"})
    assert young.headers["x-cache"] == "HIT"
    assert int(young.headers["age"]) <= 60


def test_ttl_header_expires_the_entry_in_redis_and_postgres(stack: Stack, stored) -> None:
    tag = uuid.uuid4().hex[:6]
    first = chat(stack, tutor(tag, WATER), {"X-Cache-TTL": "1"})
    stored(first.headers["x-cache-key"])
    time.sleep(1.5)
    # Neither the exact entry (Redis TTL) nor the semantic one (expires_at) may be served.
    assert chat(stack, tutor(tag, WATER_PARAPHRASE)).headers["x-cache"] == "MISS"

    def swept() -> bool:
        with psycopg.connect(stack.env["DATABASE_URL"]) as conn:
            row = conn.execute(
                "SELECT count(*) FROM cache_entries WHERE exact_key = %s", (first.headers["x-cache-key"],)
            ).fetchone()
        return row is not None and row[0] == 0

    wait_until(swept, timeout=10)  # the background sweeper deletes expired rows


def test_threshold_and_mode_headers(stack: Stack, stored) -> None:
    tag = uuid.uuid4().hex[:6]
    stored(chat(stack, tutor(tag, WATER)).headers["x-cache-key"])
    strict = chat(stack, tutor(tag, WATER_PARAPHRASE), {"X-Cache-Similarity-Threshold": "0.999"})
    assert strict.headers["x-cache"] == "MISS"
    exact_only = chat(stack, tutor(tag, WATER_PARAPHRASE + " "), {"X-Cache-Mode": "exact"})
    assert exact_only.headers["x-cache"] == "MISS"
    assert chat(stack, tutor(tag, WATER), {"X-Cache-Mode": "exact"}).headers["x-cache"] == "HIT"
    off = chat(stack, tutor(tag, WATER), {"X-Cache-Mode": "off"})
    assert off.headers["x-cache"] == "BYPASS"
    assert off.headers["x-cache-bypass-reason"] == "cache_mode_off"
    # A client's threshold below the operator's changes nothing: the verifier still decides.
    loose = chat(stack, tutor(tag, WATER_PARAPHRASE + "  "), {"X-Cache-Similarity-Threshold": "0.5"})
    assert (loose.headers["x-cache"], loose.headers["x-cache-match"]) == ("HIT", "semantic")
    assert float(loose.headers["x-cache-similarity"]) > 0.7 and "age" in loose.headers
    unrelated = chat(stack, tutor(tag, "Who wrote Hamlet?"), {"X-Cache-Similarity-Threshold": "0"})
    assert unrelated.headers["x-cache"] == "MISS"


@pytest.mark.parametrize(
    "header,value",
    [
        ("Cache-Control", "max-age=never"),
        ("X-Cache-TTL", "-5"),
        ("X-Cache-Namespace", "no spaces allowed"),
        ("X-Cache-Similarity-Threshold", "2"),
        ("X-Cache-Mode", "maybe"),
    ],
)
def test_an_invalid_control_is_a_400_naming_the_header(stack: Stack, header: str, value: str) -> None:
    response = chat(stack, unique("hi"), {header: value})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == header and header in error["message"]


def test_the_openai_sdk_sends_controls_with_extra_headers(client) -> None:
    question = unique("Name a noble gas.")
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL,
        messages=[{"role": "user", "content": question}],
        extra_headers={"X-Cache-Mode": "off"},
    )
    assert raw.headers["x-cache"] == "BYPASS"


# 5. streaming ---------------------------------------------------------------------------------------


def test_a_client_leaving_a_stream_early_leaves_nothing_stored(
    stack: Stack, mock: MockUpstream, redis_client: redis.Redis
) -> None:
    question = unique("Tell me a long story [mock:slow-stream]")
    body = {"model": MODEL, "messages": [{"role": "user", "content": question}], "stream": True}
    with httpx.stream(
        "POST", f"{stack.base_url}/v1/chat/completions", json=body, headers=stack.auth, timeout=30
    ) as response:
        key = response.headers["x-cache-key"]
        lines = response.iter_lines()
        assert next(lines).startswith("data: ")
    # The mock needs ~2 s for the whole stream; give the proxy that long to (wrongly) store it.
    time.sleep(3)
    assert not redis_client.exists(f"{stack.env['REDIS_PREFIX']}:exact:{key}")
    calls = mock.chat_calls()
    assert chat(stack, question).headers["x-cache"] == "MISS"
    assert mock.chat_calls() == calls + 1


# 6. what is never cached ----------------------------------------------------------------------------


def test_truncated_answers_are_not_cached(stack: Stack) -> None:
    question = unique("Explain general relativity in detail.")
    first = chat(stack, question, max_tokens=3)
    assert first.json()["choices"][0]["finish_reason"] == "length"
    time.sleep(0.5)
    assert chat(stack, question, max_tokens=3).headers["x-cache"] == "MISS"


def test_tool_call_answers_are_not_cached_by_default(stack: Stack) -> None:
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    question = unique("Please call tool for the weather in Paris.")
    first = chat(stack, question, tools=tools)
    assert first.json()["choices"][0]["finish_reason"] == "tool_calls"
    time.sleep(0.5)
    assert chat(stack, question, tools=tools).headers["x-cache"] == "MISS"


def test_a_hot_temperature_bypasses_the_cache_with_the_reason(stack: Stack) -> None:
    question = unique("Write a surprising poem.")
    for _ in range(2):
        response = chat(stack, question, temperature=1.5)
        assert response.headers["x-cache"] == "BYPASS"
        assert response.headers["x-cache-bypass-reason"] == "temperature_above_limit"


# 7. single flight -----------------------------------------------------------------------------------


async def test_twenty_concurrent_identical_requests_make_one_upstream_call(stack: Stack, mock: MockUpstream) -> None:
    question = unique("What are the first ten digits of pi?")
    body = {"model": MODEL, "messages": [{"role": "user", "content": question}]}
    async with httpx.AsyncClient(base_url=stack.base_url, headers=stack.auth, timeout=30) as client:

        async def ask(stream: bool) -> tuple[str, str]:
            if not stream:
                response = await client.post("/v1/chat/completions", json=body)
                return response.headers["x-cache"], response.json()["choices"][0]["message"]["content"]
            text = []
            async with client.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as response:
                status = response.headers["x-cache"]
                async for line in response.aiter_lines():
                    if line.startswith("data: {"):
                        import orjson

                        for choice in orjson.loads(line[6:])["choices"]:
                            text.append(choice["delta"].get("content") or "")
            return status, "".join(text)

        results = await asyncio.gather(*(ask(stream=i % 4 == 3) for i in range(20)))
    assert mock.stats()["calls_by_prompt"].get(question) == 1
    assert len({text for _, text in results}) == 1
    assert sorted(status for status, _ in results).count("MISS") == 1


# 9. browsing and invalidation -----------------------------------------------------------------------


def test_admin_lists_shows_and_deletes_entries(stack: Stack, stored) -> None:
    tag = uuid.uuid4().hex[:8]
    namespace = f"ns-{tag}"
    first = chat(stack, tutor(tag, WATER), {"X-Cache-Namespace": namespace})
    key = first.headers["x-cache-key"]
    stored(key)
    chat(stack, tutor(tag, WATER), {"X-Cache-Namespace": namespace})  # a hit, counted

    base = f"{stack.base_url}/api/v1/admin/cache"
    tenant = {"tenant": stack.tenant}
    assert httpx.get(f"{base}/entries", params=tenant).status_code == 401
    assert httpx.get(f"{base}/entries", params=tenant, headers={"Authorization": "Bearer nope"}).status_code == 401
    assert httpx.get(f"{base}/entries", params=tenant, headers=stack.auth).status_code == 403  # a tenant's key

    page = httpx.get(f"{base}/entries", params={**tenant, "namespace": namespace}, headers=admin(stack)).json()
    assert page["total"] == 1 and page["items"][0]["key"] == key
    search = {**tenant, "namespace": namespace, "q": "BOILING point"}
    assert httpx.get(f"{base}/entries", params=search, headers=admin(stack)).json()["total"] == 1
    assert (
        httpx.get(f"{base}/entries", params={**tenant, "q": "no such text zz"}, headers=admin(stack)).json()["total"]
        == 0
    )

    def shown() -> dict[str, Any]:
        return httpx.get(f"{base}/entries/{key}", params=tenant, headers=admin(stack)).json()["entry"]

    entry = wait_until(lambda: (e := shown())["hit_count"] >= 1 and e, timeout=5)
    assert entry["prompt"] == WATER and entry["model"] == MODEL and entry["expires_at"] > entry["created_at"]
    assert entry["completion"]["choices"][0]["message"]["content"]
    by_id = httpx.get(f"{base}/entries/{entry['id']}", params=tenant, headers=admin(stack)).json()["entry"]
    assert by_id["key"] == key

    deleted = httpx.delete(f"{base}/entries/{key}", params=tenant, headers=admin(stack)).json()
    assert deleted["deleted"] == 1
    assert httpx.get(f"{base}/entries/{key}", params=tenant, headers=admin(stack)).status_code == 404
    assert chat(stack, tutor(tag, WATER), {"X-Cache-Namespace": namespace}).headers["x-cache"] == "MISS"


def test_admin_deletes_entries_near_a_prompt_and_flushes_a_namespace(stack: Stack, stored) -> None:
    tag = uuid.uuid4().hex[:8]
    namespace = f"ns-{tag}"
    headers = {"X-Cache-Namespace": namespace}
    water = chat(stack, tutor(tag, WATER), headers)
    bread = chat(stack, tutor(tag, "How do I bake sourdough bread?"), headers)
    stored(water.headers["x-cache-key"])
    stored(bread.headers["x-cache-key"])

    base = f"{stack.base_url}/api/v1/admin/cache"
    near = httpx.post(
        f"{base}/invalidate",
        json={"tenant": stack.tenant, "prompt": WATER_PARAPHRASE, "min_similarity": 0.85, "namespace": namespace},
        headers=admin(stack),
    ).json()
    assert near["keys"] == [water.headers["x-cache-key"]]
    assert chat(stack, tutor(tag, WATER), headers).headers["x-cache"] == "MISS"
    assert chat(stack, tutor(tag, "How do I bake sourdough bread?"), headers).headers["x-cache"] == "HIT"

    flushed = httpx.delete(f"{base}/namespaces/{namespace}", params={"tenant": stack.tenant}, headers=admin(stack))
    assert flushed.json()["deleted"] >= 1
    assert chat(stack, tutor(tag, "How do I bake sourdough bread?"), headers).headers["x-cache"] == "MISS"


# 10. reasons in stats and metrics -------------------------------------------------------------------


def test_metrics_keep_the_reasons(stack: Stack) -> None:
    chat(stack, unique("Invent a word."), temperature=1.9)
    text = httpx.get(f"http://127.0.0.1:{stack.metrics_ports['cache_worker']}/metrics").text
    assert 'llmcache_cache_lookups_total{reason="temperature_above_limit",result="bypass"}' in text
    assert 'result="hit_exact"' in text and 'result="miss"' in text
