"""The whole request path through the real services: miss, exact hit, semantic hit, streaming, errors, stats."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import MockUpstream, wait_until
from tests.integration.stack import Stack

pytestmark = pytest.mark.integration

MODEL = "gpt-4o-mini"


def ask(client: openai.OpenAI, question: str, **kwargs: Any) -> tuple[Any, httpx.Headers]:
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": question}], **kwargs
    )
    return raw.parse(), raw.headers


def ask_streamed(client: openai.OpenAI, question: str, **kwargs: Any) -> tuple[str, str | None, httpx.Headers]:
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": question}], stream=True, **kwargs
    )
    text, finish = [], None
    for chunk in raw.parse():
        for choice in chunk.choices:
            text.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
    return "".join(text), finish, raw.headers


def unique(question: str) -> str:
    """Questions are made unique per test run so runs never share answers."""
    return f"{question} [{uuid.uuid4().hex[:6]}]"


def test_miss_then_exact_hit_without_calling_the_upstream(client, mock: MockUpstream, stored) -> None:
    question = unique("What is the capital of Australia?")
    calls = mock.chat_calls()
    first, headers = ask(client, question)
    assert headers["x-cache"] == "MISS"
    assert mock.chat_calls() == calls + 1
    assert first.choices[0].message.content
    stored(headers["x-cache-key"], semantic=False)

    second, headers2 = ask(client, question)
    assert headers2["x-cache"] == "HIT"
    assert headers2["x-cache-match"] == "exact"
    assert headers2["x-cache-key"] == headers["x-cache-key"]
    assert int(headers2["age"]) >= 0
    assert second.choices[0].message.content == first.choices[0].message.content
    assert second.usage.total_tokens == first.usage.total_tokens
    assert mock.chat_calls() == calls + 1, "a hit must not call the upstream"


def test_paraphrase_is_a_semantic_hit_and_unrelated_question_misses(client, mock: MockUpstream, stored) -> None:
    # A namespace of its own keeps this run's water question away from any other test's.
    tag = uuid.uuid4().hex[:6]
    system = {"role": "system", "content": f"You are a physics tutor ({tag})."}

    def ask_tutor(question: str) -> tuple[Any, httpx.Headers]:
        raw = client.chat.completions.with_raw_response.create(
            model=MODEL, messages=[system, {"role": "user", "content": question}]
        )
        return raw.parse(), raw.headers

    original, headers = ask_tutor("What is the boiling point of water at sea level?")
    assert headers["x-cache"] == "MISS"
    stored(headers["x-cache-key"])
    calls = mock.chat_calls()

    paraphrase, headers = ask_tutor("What is water's boiling point at sea level?")
    assert headers["x-cache"] == "HIT"
    assert headers["x-cache-match"] == "semantic"
    assert 0.85 <= float(headers["x-cache-similarity"]) <= 1.0
    assert paraphrase.choices[0].message.content == original.choices[0].message.content
    assert mock.chat_calls() == calls

    _, headers = ask_tutor("How do I bake sourdough bread at home?")
    assert headers["x-cache"] == "MISS"
    assert mock.chat_calls() == calls + 1


def test_a_different_system_prompt_never_hits(client, stored) -> None:
    question = unique("Summarize the plot of Hamlet.")
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL,
        messages=[{"role": "system", "content": "Answer in French."}, {"role": "user", "content": question}],
    )
    stored(raw.headers["x-cache-key"])
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL,
        messages=[{"role": "system", "content": "Answer in German."}, {"role": "user", "content": question}],
    )
    assert raw.headers["x-cache"] == "MISS"


def test_streamed_miss_and_streamed_hit_carry_the_non_streamed_answer(client, mock: MockUpstream, stored) -> None:
    # Stored from a non-streamed answer, replayed to a streamed request.
    question = unique("Name three primary colors.")
    answer, headers = ask(client, question)
    stored(headers["x-cache-key"])
    text, finish, stream_headers = ask_streamed(client, question)
    assert stream_headers["x-cache"] == "HIT"
    assert stream_headers["content-type"].startswith("text/event-stream")
    assert text == answer.choices[0].message.content
    assert finish == "stop"

    # Stored from a streamed miss, served to a non-streamed request.
    question = unique("Why is the sky blue?")
    calls = mock.chat_calls()
    text, finish, stream_headers = ask_streamed(client, question)
    assert stream_headers["x-cache"] == "MISS"
    assert finish == "stop" and text
    assert mock.chat_calls() == calls + 1
    stored(stream_headers["x-cache-key"])
    answer, headers = ask(client, question)
    assert headers["x-cache"] == "HIT" and headers["x-cache-match"] == "exact"
    assert answer.choices[0].message.content == text
    assert mock.chat_calls() == calls + 1


def test_stream_is_server_sent_events_ending_with_done(stack: Stack, stored) -> None:
    body = {"model": MODEL, "messages": [{"role": "user", "content": unique("Count to five.")}], "stream": True}
    for expected in ("MISS", "HIT"):
        with httpx.stream(
            "POST", f"{stack.base_url}/v1/chat/completions", json=body, headers=stack.auth, timeout=30
        ) as response:
            assert response.status_code == 200
            assert response.headers["x-cache"] == expected
            events = [line for line in response.iter_lines() if line]
        assert all(line.startswith("data: ") for line in events)
        assert events[-1] == "data: [DONE]"
        assert '"object":"chat.completion.chunk"' in events[0]
        if expected == "MISS":
            stored(response.headers["x-cache-key"])


def test_stream_with_include_usage_gets_a_usage_chunk_on_miss_and_hit(client, stored) -> None:
    question = unique("List two prime numbers.")
    for expected in ("MISS", "HIT"):
        raw = client.chat.completions.with_raw_response.create(
            model=MODEL,
            messages=[{"role": "user", "content": question}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(raw.parse())
        assert raw.headers["x-cache"] == expected
        assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0
        if expected == "MISS":
            stored(raw.headers["x-cache-key"])


def test_upstream_500_is_an_openai_error_and_is_not_cached(client, mock: MockUpstream, stored) -> None:
    question = unique("What is 2 + 2?")
    mock.fail(500)
    try:
        with pytest.raises(openai.InternalServerError) as raised:
            ask(client, question)
    finally:
        mock.clear_faults()
    assert raised.value.status_code == 500
    error = raised.value.body
    assert isinstance(error, dict) and error.get("message") and error.get("type")
    # An upstream's error is still the request's answer: its cache headers say how it was looked up.
    assert raised.value.response.headers["x-cache"] == "MISS"
    assert len(raised.value.response.headers["x-cache-key"]) == 64

    calls = mock.chat_calls()
    _, headers = ask(client, question)
    assert headers["x-cache"] == "MISS", "an error must never be served from the cache"
    assert mock.chat_calls() == calls + 1


def test_upstream_429_keeps_its_status(client, mock: MockUpstream) -> None:
    mock.fail(429)
    try:
        with pytest.raises(openai.RateLimitError) as raised:
            ask(client, unique("Tell me a joke."))
    finally:
        mock.clear_faults()
    assert raised.value.status_code == 429
    assert raised.value.response.headers["x-cache"] == "MISS" and raised.value.response.headers["x-cache-key"]


def test_the_upstream_refusing_the_proxys_key_is_a_502_not_retried(stack: Stack, mock: MockUpstream) -> None:
    calls = mock.chat_calls()
    mock.fail(401, count=-1)
    try:
        body = {"model": MODEL, "messages": [{"role": "user", "content": unique("Refused key?")}]}
        response = httpx.post(f"{stack.base_url}/v1/chat/completions", json=body, headers=stack.auth, timeout=30)
    finally:
        mock.clear_faults()
    assert response.status_code == 502
    assert response.json()["error"]["type"] == "upstream_auth_error"
    assert response.headers["x-should-retry"] == "false"  # the openai SDK would otherwise retry a 502
    assert response.headers["x-cache"] == "MISS" and response.headers["x-cache-key"]
    assert mock.chat_calls() == calls + 1  # a 401 is not retried by the LLM worker either


def test_models_are_listed(client, stack: Stack) -> None:
    models = client.models.list()
    assert len(models.data) > 1 and all(model.id for model in models.data)
    # A key limited to some models is shown only those.
    admin = {"Authorization": f"Bearer {stack.env['ADMIN_API_KEY']}"}
    tenant = f"t-{uuid.uuid4().hex[:10]}"
    assert httpx.post(f"{stack.base_url}/api/v1/admin/tenants", json={"name": tenant}, headers=admin).status_code == 201
    limited = {"tenant": tenant, "name": "one-model", "allowed_models": [models.data[0].id]}
    created = httpx.post(f"{stack.base_url}/api/v1/admin/keys", json=limited, headers=admin).json()
    shown = httpx.get(f"{stack.base_url}/v1/models", headers={"Authorization": f"Bearer {created['key']}"}, timeout=30)
    assert [m["id"] for m in shown.json()["data"]] == [models.data[0].id]


def test_bad_input_gets_a_clear_openai_style_400(stack: Stack) -> None:
    cases = [
        (b"{not json", "invalid_json"),
        (b"[]", "invalid_json"),
        (b'{"model": "m", "messages": []}', "invalid_value"),
        (b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": "hot"}', "invalid_value"),
        (b'{"messages": [{"role": "user", "content": "hi"}]}', "invalid_value"),
        # Numbers are numbers, as OpenAI checks them: "1.7" would slip past the temperature rule.
        (b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": "1.7"}', "invalid_value"),
        (b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": true}', "invalid_value"),
        (b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "n": "2"}', "invalid_value"),
    ]
    refused_before = _errors_counted(stack, "4xx")
    for body, code in cases:
        response = httpx.post(
            f"{stack.base_url}/v1/chat/completions",
            content=body,
            headers={**stack.auth, "content-type": "application/json"},
        )
        assert response.status_code == 400, body
        error = response.json()["error"]
        assert error["type"] == "invalid_request_error"
        assert error["code"] == code
        assert error["message"]
    # A header value str.isdigit() accepts and int() does not ("\xb2" is "²"): a 400, not a 500.
    odd_header = httpx.post(
        f"{stack.base_url}/v1/chat/completions",
        json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]},
        headers=[*stack.auth.items(), (b"X-Cache-TTL", b"\xb2")],
    )
    assert odd_header.status_code == 400 and odd_header.json()["error"]["code"] == "invalid_header"
    assert httpx.post(f"{stack.base_url}/v1/chat/completions", json={}).status_code == 401
    # Every one of them is in the gateway's request counter, which the error-rate alert divides by.
    assert _errors_counted(stack, "4xx") == refused_before + len(cases) + 2


def _errors_counted(stack: Stack, status_class: str) -> float:
    sample = f'llmcache_gateway_requests_total{{cache="ERROR",status="{status_class}",stream="false"}} '
    for line in httpx.get(f"{stack.base_url}/metrics").text.splitlines():
        if line.startswith(sample):
            return float(line.split()[-1])
    return 0.0


def test_old_path_serves_the_same_api(stack: Stack) -> None:
    body = {"model": MODEL, "messages": [{"role": "user", "content": unique("Old path?")}]}
    response = httpx.post(f"{stack.base_url}/api/v1/chat/completions", json=body, headers=stack.auth, timeout=30)
    assert response.status_code == 200
    assert response.json()["object"] == "chat.completion"
    assert response.headers["x-cache"] == "MISS"
    assert response.headers["x-upstream"].startswith("mock")


def test_every_service_exposes_metrics_and_the_gateway_health(stack: Stack) -> None:
    assert httpx.get(f"{stack.base_url}/healthz").status_code == 200
    assert httpx.head(f"{stack.base_url}/healthz").status_code == 200  # load balancers that check with HEAD
    assert httpx.head(f"{stack.base_url}/readyz", timeout=10).status_code == 200
    assert httpx.get(f"{stack.base_url}/readyz", timeout=10).json() == {"ready": True, "broker": True}
    status = httpx.get(f"{stack.base_url}/status", timeout=10)
    assert status.status_code == 200
    assert set(status.json()["services"]) == {"cache_worker", "embedder", "llm_worker", "stats_consumer", "tenants"}
    assert "llmcache_gateway_requests_total" in httpx.get(f"{stack.base_url}/metrics").text
    expected = {
        "cache_worker": "llmcache_cache_lookups_total",
        "embedder": "llmcache_embedder_requests_total",
        "llm_worker": "llmcache_upstream_requests_total",
        "stats_consumer": "llmcache_usage_events_written_total",
    }
    for service, metric in expected.items():
        text = httpx.get(f"http://127.0.0.1:{stack.metrics_ports[service]}/metrics").text
        assert metric in text, service


def test_stats_count_what_was_sent(stack: Stack, client, stored) -> None:
    def stats() -> dict[str, Any]:
        response = httpx.get(f"{stack.base_url}/api/v1/cache/stats", headers=stack.auth, timeout=10)
        assert response.status_code == 200
        return response.json()

    # Earlier tests' usage events may still be in flight: start from a settled count.
    wait_until(lambda: _settled(stats), timeout=15)
    before = stats()
    question = unique("Which planet is the largest?")
    _, headers = ask(client, question)  # miss
    stored(headers["x-cache-key"])
    ask(client, question)  # exact hit
    ask(client, question)  # exact hit
    ask(client, unique("Which ocean is the deepest?"))  # miss

    after = wait_until(lambda: (s := stats())["requests"] == before["requests"] + 4 and s, timeout=15)
    assert after["misses"] - before["misses"] == 2
    assert after["hits_exact"] - before["hits_exact"] == 2
    assert after["hits"] - before["hits"] == 2
    assert after["tokens_saved"] > before["tokens_saved"]
    assert after["cost_saved_usd"] > before["cost_saved_usd"]
    assert 0 < after["hit_rate"] < 1


def _settled(stats) -> bool:  # type: ignore[no-untyped-def]
    import time

    first = stats()["requests"]
    time.sleep(0.5)
    return stats()["requests"] == first
