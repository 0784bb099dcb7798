"""The OpenAI-compatible provider against the real mock upstream served by uvicorn: calls, streams and error
mapping."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import pytest

from services.llm_worker.completions import assemble, is_cacheable
from services.llm_worker.providers.base import UpstreamError, redact, retry_after
from services.llm_worker.providers.openai_compatible import OpenAICompatibleProvider, error_info, upstream_payload
from services.llm_worker.routing import MOCK_LABEL, UpstreamConfig

Upstream = OpenAICompatibleProvider


def provider(base_url: str, *, http: httpx.AsyncClient | None = None, retries: int = 0) -> OpenAICompatibleProvider:
    """The provider of one upstream; `http` replaces its SDK client's transport (to see or fake traffic)."""
    config = UpstreamConfig("test", "openai", base_url, "key", ("*",), MOCK_LABEL)
    upstream = OpenAICompatibleProvider(config, timeout=10, max_retries=retries)
    if http is not None:
        upstream.client = openai.AsyncOpenAI(base_url=base_url, api_key="key", max_retries=0, http_client=http)
    return upstream


@pytest.fixture
async def upstream(mock_url: str) -> AsyncIterator[Upstream]:
    client = provider(f"{mock_url}/v1")
    yield client
    await client.close()


def chat(content: str, **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}], **extra}


async def test_complete_returns_the_upstream_json(upstream: Upstream, control: httpx.AsyncClient) -> None:
    completion = await upstream.complete(chat("What is a cache?"))
    direct = (await control.post("/v1/chat/completions", json=chat("What is a cache?"))).json()
    assert completion.keys() == direct.keys()
    assert completion["object"] == "chat.completion"
    assert completion["choices"][0]["message"] == direct["choices"][0]["message"]
    assert completion["usage"] == direct["usage"]
    assert is_cacheable(completion, cache_tool_calls=False) == (True, None)


async def test_stream_yields_chunks_ending_with_usage(upstream: Upstream, control: httpx.AsyncClient) -> None:
    chunks = [chunk async for chunk in upstream.stream(chat("Stream a cache answer", stream=True))]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0  # always requested
    whole = await upstream.complete(chat("Stream a cache answer"))
    assembled = assemble(chunks)
    assert assembled["choices"][0]["message"]["content"] == whole["choices"][0]["message"]["content"]
    assert assembled["usage"] == whole["usage"]
    stats = (await control.get("/_mock/stats")).json()
    assert stats["stream_calls"] == 1


async def test_truncated_answer_is_not_cacheable(upstream: Upstream, control: httpx.AsyncClient) -> None:
    completion = await upstream.complete(chat("Tell me everything", max_tokens=3))
    assert is_cacheable(completion, cache_tool_calls=False) == (False, "finish_reason_length")


async def test_500_maps_to_error_info(upstream: Upstream, control: httpx.AsyncClient) -> None:
    await control.post("/_mock/faults", json={"status": 500, "count": 1})
    with pytest.raises(UpstreamError) as caught:
        await upstream.complete(chat("Hello"))
    assert caught.value.error.status == 500
    assert caught.value.error.type == "server_error"
    assert caught.value.error.message == "The server had an error while processing your request."
    assert caught.value.outcome == "error_5xx"
    assert (await upstream.complete(chat("Hello")))["choices"]  # recovered after the count


async def test_429_maps_to_error_info_with_code(upstream: Upstream, control: httpx.AsyncClient) -> None:
    await control.post("/_mock/faults", json={"status": 429, "count": 1, "retry_after": 1})
    with pytest.raises(UpstreamError) as caught:
        await upstream.complete(chat("Hello"))
    assert caught.value.error.status == 429
    assert caught.value.error.code == "rate_limit_exceeded"
    assert caught.value.error.type == "requests"
    # Passed on, so the client's SDK waits as long as the upstream asked before it retries.
    assert caught.value.error.retry_after_seconds == 1


async def test_a_400_keeps_the_parameter_it_names(upstream: Upstream) -> None:
    with pytest.raises(UpstreamError) as caught:
        await upstream.complete(chat("Hello", n=0))  # the mock refuses n < 1, as OpenAI does
    assert caught.value.error.status == 400 and caught.value.error.param == "n"


def test_retry_after_in_seconds_or_milliseconds() -> None:
    assert retry_after({"retry-after": "2"}) == 2.0
    assert retry_after({"retry-after-ms": "250", "retry-after": "1"}) == 0.25
    assert retry_after({"retry-after": "Wed, 21 Oct 2026 07:28:00 GMT"}) is None
    assert retry_after({}) is None


async def test_the_upstream_refusing_the_proxys_key_is_a_bad_gateway(
    upstream: Upstream, control: httpx.AsyncClient
) -> None:
    # Not a 401: the client's key is valid here, and its SDK would report it as wrong.
    await control.post("/_mock/faults", json={"status": 401, "count": 1})
    with pytest.raises(UpstreamError) as caught:
        await upstream.complete(chat("Hello"))
    assert caught.value.error.status == 502
    assert caught.value.error.type == "upstream_auth_error"
    assert "refused this proxy's credentials (HTTP 401)" in caught.value.error.message


async def test_error_before_the_first_chunk_of_a_stream(upstream: Upstream, control: httpx.AsyncClient) -> None:
    await control.post("/_mock/faults", json={"status": 503, "count": 1})
    with pytest.raises(UpstreamError) as caught:
        _ = [chunk async for chunk in upstream.stream(chat("Hello", stream=True))]
    assert caught.value.error.status == 503


async def test_error_in_the_middle_of_a_stream(upstream: Upstream, control: httpx.AsyncClient) -> None:
    await control.post("/_mock/faults", json={"status": 500, "count": 1, "after_chunks": 2, "message": "boom"})
    received = []
    with pytest.raises(UpstreamError) as caught:
        async for chunk in upstream.stream(chat("Hello", stream=True)):
            received.append(chunk)
    assert len(received) == 2
    assert caught.value.error.status == 502
    assert caught.value.error.message == "boom"
    assert caught.value.outcome == "error_stream"


async def test_retries_ride_out_a_transient_fault(mock_url: str, control: httpx.AsyncClient) -> None:
    retrying = provider(f"{mock_url}/v1", retries=2)
    try:
        await control.post("/_mock/faults", json={"status": 503, "count": 1, "retry_after": 0})
        assert (await retrying.complete(chat("Hello")))["choices"]
    finally:
        await retrying.close()
    assert (await control.get("/_mock/stats")).json()["chat_calls"] == 2


async def test_unreachable_upstream_maps_to_502() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dead = provider(f"http://127.0.0.1:{port}/v1")
    try:
        with pytest.raises(UpstreamError) as caught:
            await dead.complete(chat("Hello"))
    finally:
        await dead.close()
    assert (caught.value.error.status, caught.value.error.type) == (502, "upstream_unreachable")


async def test_timeout_maps_to_504(upstream: Upstream, control: httpx.AsyncClient) -> None:
    await control.post("/_mock/faults", json={"status": 500, "count": 1, "delay_ms": 600})
    with pytest.raises(UpstreamError) as caught:
        await upstream.complete(chat("Hello"), timeout=0.2)
    assert (caught.value.error.status, caught.value.error.type) == (504, "upstream_timeout")


async def test_the_payload_goes_upstream_as_the_client_sent_it(mock_url: str) -> None:
    # Fields OpenAI does not know (vLLM's top_k) reach an OpenAI-compatible upstream; stream is the worker's.
    sent: list[dict[str, Any]] = []

    async def record(request: httpx.Request) -> None:
        sent.append(json.loads(request.content))

    upstream = provider(f"{mock_url}/v1", http=httpx.AsyncClient(event_hooks={"request": [record]}))
    body = chat("Hello", temperature=0.2, top_k=40, repetition_penalty=1.1, stream=False)
    try:
        completion = await upstream.complete(body)
        chunks = [c async for c in upstream.stream({**body, "stream": True, "stream_options": {"x": 1}})]
    finally:
        await upstream.close()
    assert completion["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["usage"]["total_tokens"] > 0
    assert sent[0] == {k: v for k, v in body.items() if k != "stream"}
    assert sent[1] == {**sent[0], "stream": True, "stream_options": {"x": 1, "include_usage": True}}


def test_model_and_messages_are_required() -> None:
    for body in ({"messages": []}, {"model": "m"}, {"model": "m", "messages": "hi"}):
        with pytest.raises(UpstreamError) as refused:
            upstream_payload(body)
        assert refused.value.error.status == 400


def upstream_answering(answer) -> Upstream:  # type: ignore[no-untyped-def]
    return provider("http://upstream.test/v1", http=httpx.AsyncClient(transport=httpx.MockTransport(answer)))


async def test_a_completion_sent_as_text_plain_is_still_a_completion() -> None:
    completion = {"id": "c1", "object": "chat.completion", "choices": [{"index": 0, "message": {"content": "hi"}}]}
    upstream = upstream_answering(
        lambda _: httpx.Response(200, content=json.dumps(completion), headers={"content-type": "text/plain"})
    )
    try:
        assert await upstream.complete(chat("Hello")) == completion
    finally:
        await upstream.close()


async def test_an_error_with_a_list_param_and_a_number_code_is_still_an_error_reply() -> None:
    body = {"error": {"message": "bad", "type": "invalid_request_error", "param": ["messages", 0], "code": 40001}}
    upstream = upstream_answering(lambda _: httpx.Response(400, json=body))
    try:
        with pytest.raises(UpstreamError) as caught:
            await upstream.complete(chat("Hello"))
    finally:
        await upstream.close()
    assert caught.value.error.status == 400
    assert (caught.value.error.param, caught.value.error.code) == (None, "40001")


async def test_an_answer_that_is_not_a_completion_is_a_bad_gateway() -> None:
    # A 200 from the wrong URL (a web page, another API's JSON) is not stored or relayed as an answer.
    replies = {"/v1/chat/completions": httpx.Response(200, json={"status": "ok"})}

    def answer(request: httpx.Request) -> httpx.Response:
        if json.loads(request.content).get("stream"):
            return httpx.Response(
                200, text='data: ["not", "a", "chunk"]\n\n', headers={"content-type": "text/event-stream"}
            )
        return replies[request.url.path]

    upstream = provider("http://upstream.test/v1", http=httpx.AsyncClient(transport=httpx.MockTransport(answer)))
    try:
        with pytest.raises(UpstreamError) as whole:
            await upstream.complete(chat("Hello"))
        with pytest.raises(UpstreamError) as streamed:
            _ = [c async for c in upstream.stream(chat("Hello"))]
    finally:
        await upstream.close()
    assert whole.value.error.status == streamed.value.error.status == 502
    assert "not a chat completion" in whole.value.error.message


async def test_list_models(upstream: Upstream) -> None:
    models = await upstream.list_models()
    assert {"gpt-4o-mini", "gpt-4o", "mock-llm"} <= {m["id"] for m in models}


async def test_list_models_failure_is_an_upstream_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dead = provider(f"http://127.0.0.1:{port}/v1")
    try:
        with pytest.raises(UpstreamError) as caught:
            await dead.list_models()
    finally:
        await dead.close()
    assert str(caught.value) == "Could not reach the upstream."


def test_api_keys_are_scrubbed_from_error_messages() -> None:
    request = httpx.Request("POST", "http://upstream/v1/chat/completions")
    response = httpx.Response(401, request=request)
    body = {"message": "Incorrect API key provided: sk-proj-abcdef123456. Also my-secret-key-1 leaked", "type": "x"}
    exc = openai.AuthenticationError("Error code: 401", response=response, body=body)  # type: ignore[arg-type]
    error = error_info(exc, ["my-secret-key-1"]).error
    assert error.status == 502  # the upstream refused the proxy's key, not the client's
    assert "abcdef123456" not in error.message
    assert "my-secret-key-1" not in error.message
    assert redact("key sk-abcdefghijkl here") == "key sk-ab*** here"
