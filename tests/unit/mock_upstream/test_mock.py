"""The mock upstream speaks OpenAI's chat, models and embeddings API, deterministically, with fault injection."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import numpy as np
import orjson
import pytest

from services.mock_upstream import answers
from services.mock_upstream.app import create_app
from services.mock_upstream.settings import Settings


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(latency_ms=0, chunk_delay_ms=0))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://mock") as http:
        yield http


def chat(content: str, model: str = "gpt-4o-mini", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": content}], **extra}


def sse_events(body: str) -> list[str]:
    assert body.endswith("\n\n")
    events = body.split("\n\n")[:-1]
    assert all(event.startswith("data: ") for event in events)
    return [event.removeprefix("data: ") for event in events]


async def test_same_request_same_answer_and_openai_shape(client: httpx.AsyncClient) -> None:
    first = await client.post("/v1/chat/completions", json=chat("What is a cache?"))
    second = await client.post("/v1/chat/completions", json=chat("What is a cache?"))
    assert first.status_code == 200
    assert first.headers["x-mock-upstream"] == "true"
    body = first.json()
    assert body["id"].startswith("chatcmpl-")
    assert body["object"] == "chat.completion"
    assert isinstance(body["created"], int)
    assert body["model"] == "gpt-4o-mini"
    [choice] = body["choices"]
    assert choice["index"] == 0
    assert choice["finish_reason"] == "stop"
    assert choice["message"]["role"] == "assistant"
    content = choice["message"]["content"]
    assert content.startswith("Mock answer ")
    assert "What is a cache?" in content
    assert content == second.json()["choices"][0]["message"]["content"]
    usage = body["usage"]
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["completion_tokens"] == answers.count_tokens(content)


async def test_different_prompts_and_models_get_different_answers(client: httpx.AsyncClient) -> None:
    async def content(payload: dict[str, Any]) -> str:
        return (await client.post("/v1/chat/completions", json=payload)).json()["choices"][0]["message"]["content"]

    a = await content(chat("What is a cache?"))
    assert a != await content(chat("What is a queue?"))
    assert a != await content(chat("What is a cache?", model="gpt-4o"))


async def test_longer_prompts_count_more_prompt_tokens(client: httpx.AsyncClient) -> None:
    short = (await client.post("/v1/chat/completions", json=chat("hi"))).json()["usage"]["prompt_tokens"]
    long = (await client.post("/v1/chat/completions", json=chat("hi " * 200))).json()["usage"]["prompt_tokens"]
    assert long > short + 100


async def test_max_tokens_truncates_with_finish_reason_length(client: httpx.AsyncClient) -> None:
    for limit in ("max_tokens", "max_completion_tokens"):
        payload = {**chat("Tell me everything"), limit: 5}
        body = (await client.post("/v1/chat/completions", json=payload)).json()
        assert body["choices"][0]["finish_reason"] == "length"
        assert body["usage"]["completion_tokens"] <= 5
        assert len(body["choices"][0]["message"]["content"]) <= 20
    roomy = (await client.post("/v1/chat/completions", json=chat("Tell me everything", max_tokens=4000))).json()
    assert roomy["choices"][0]["finish_reason"] == "stop"


async def test_n_choices(client: httpx.AsyncClient) -> None:
    body = (await client.post("/v1/chat/completions", json=chat("Pick a number", n=3))).json()
    assert [c["index"] for c in body["choices"]] == [0, 1, 2]
    assert len({c["message"]["content"] for c in body["choices"]}) == 3
    single = (await client.post("/v1/chat/completions", json=chat("Pick a number"))).json()
    assert body["choices"][0]["message"]["content"] == single["choices"][0]["message"]["content"]


async def test_call_tool_answers_with_a_tool_call(client: httpx.AsyncClient) -> None:
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    body = (await client.post("/v1/chat/completions", json=chat("Please call tool now", tools=tools))).json()
    [choice] = body["choices"]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    [call] = choice["message"]["tool_calls"]
    assert call["type"] == "function"
    assert call["id"].startswith("call_")
    assert call["function"] == {"name": "get_weather", "arguments": "{}"}
    plain = (await client.post("/v1/chat/completions", json=chat("What is the weather?", tools=tools))).json()
    assert plain["choices"][0]["finish_reason"] == "stop"


async def test_stream_format_with_usage_chunk_and_done(client: httpx.AsyncClient) -> None:
    payload = chat("Stream me an answer", stream=True, stream_options={"include_usage": True})
    response = await client.post("/v1/chat/completions", json=payload)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["x-mock-upstream"] == "true"
    events = sse_events(response.text)
    assert events[-1] == "[DONE]"
    chunks = [orjson.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[0]["choices"][0]["delta"]["content"] == ""
    content_chunks = [c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")]
    assert len(content_chunks) > 3  # a few words each
    text = "".join(c["choices"][0]["delta"]["content"] for c in content_chunks)
    whole = (await client.post("/v1/chat/completions", json=chat("Stream me an answer"))).json()
    assert text == whole["choices"][0]["message"]["content"]
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert all(c["usage"] is None for c in chunks[:-1])
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == whole["usage"]


async def test_stream_without_include_usage_has_no_usage(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/chat/completions", json=chat("Stream me", stream=True))
    events = sse_events(response.text)
    assert events[-1] == "[DONE]"
    chunks = [orjson.loads(e) for e in events[:-1]]
    assert all("usage" not in c and c["choices"] for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


async def test_fault_fails_the_next_calls_then_recovers(client: httpx.AsyncClient) -> None:
    armed = await client.post("/_mock/faults", json={"status": 500, "count": 2})
    assert armed.status_code == 200
    for _ in range(2):
        failed = await client.post("/v1/chat/completions", json=chat("Hello"))
        assert failed.status_code == 500
        assert failed.headers["x-mock-upstream"] == "true"
        error = failed.json()["error"]
        assert error["type"] == "server_error" and error["message"]
        assert "code" in error
    assert (await client.post("/v1/chat/completions", json=chat("Hello"))).status_code == 200
    stats = (await client.get("/_mock/stats")).json()
    assert stats["chat_calls"] == 3  # failed calls count too
    assert stats["calls_by_prompt"] == {"Hello": 3}


async def test_rate_limit_fault_until_cleared_with_retry_after(client: httpx.AsyncClient) -> None:
    await client.post("/_mock/faults", json={"status": 429, "count": -1, "retry_after": 2})
    for _ in range(3):
        failed = await client.post("/v1/chat/completions", json=chat("Hello"))
        assert failed.status_code == 429
        assert failed.headers["retry-after"] == "2"
        assert failed.json()["error"]["code"] == "rate_limit_exceeded"
    await client.delete("/_mock/faults")
    assert (await client.post("/v1/chat/completions", json=chat("Hello"))).status_code == 200


async def test_mid_stream_fault_sends_some_chunks_then_an_error_event(client: httpx.AsyncClient) -> None:
    await client.post("/_mock/faults", json={"status": 500, "after_chunks": 2})
    response = await client.post("/v1/chat/completions", json=chat("Stream me", stream=True))
    events = sse_events(response.text)
    assert len(events) == 3
    assert orjson.loads(events[-1])["error"]["type"] == "server_error"


async def test_stats_count_chat_stream_and_embedding_calls_and_reset(client: httpx.AsyncClient) -> None:
    await client.post("/v1/chat/completions", json=chat("one"))
    await client.post("/v1/chat/completions", json=chat("one", stream=True))
    await client.post("/v1/chat/completions", json=chat("two"))
    await client.post("/v1/embeddings", json={"model": "text-embedding-3-small", "input": "x"})
    stats = (await client.get("/_mock/stats")).json()
    assert stats == {
        "chat_calls": 3,
        "stream_calls": 1,
        "embedding_calls": 1,
        "embedding_inputs": 1,
        "messages_calls": 0,
        "messages_stream_calls": 0,
        "models_calls": 0,
        "calls_by_prompt": {"one": 2, "two": 1},
        "calls_by_key": {"": 4},
    }
    await client.post("/_mock/faults", json={"status": 503, "count": -1})
    await client.post("/_mock/reset")
    assert (await client.get("/_mock/stats")).json()["chat_calls"] == 0
    assert (await client.post("/v1/chat/completions", json=chat("one"))).status_code == 200


async def test_latency_header_delays_the_answer(client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []
    sleep = asyncio.sleep

    async def recorded(seconds: float, *args: Any) -> Any:
        waits.append(seconds)
        return await sleep(0, *args)

    monkeypatch.setattr(asyncio, "sleep", recorded)
    response = await client.post("/v1/chat/completions", json=chat("slow"), headers={"X-Mock-Latency-Ms": "150"})
    assert response.status_code == 200
    assert max(waits) == pytest.approx(0.15)  # waited as long as asked before answering


async def test_bad_json_and_bad_requests_get_openai_errors(client: httpx.AsyncClient) -> None:
    bad = await client.post("/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"})
    assert bad.status_code == 400
    assert bad.headers["x-mock-upstream"] == "true"
    assert bad.json()["error"]["type"] == "invalid_request_error"
    no_messages = await client.post("/v1/chat/completions", json={"model": "gpt-4o-mini"})
    assert no_messages.status_code == 400
    assert no_messages.json()["error"]["param"] == "messages"
    unknown = await client.get("/v1/nope")
    assert unknown.status_code == 404
    assert unknown.headers["x-mock-upstream"] == "true"
    assert "error" in unknown.json()
    bad_fault = await client.post("/_mock/faults", json={"status": 200})
    assert bad_fault.status_code == 400


async def test_models_list(client: httpx.AsyncClient) -> None:
    body = (await client.get("/v1/models")).json()
    assert body["object"] == "list"
    assert {"gpt-4o-mini", "gpt-4o", "mock-llm"} <= {m["id"] for m in body["data"]}
    assert all(m["object"] == "model" for m in body["data"])


async def test_embeddings_are_deterministic_unit_vectors(client: httpx.AsyncClient) -> None:
    payload = {"model": "text-embedding-3-small", "input": ["a cat", "a dog"]}
    first = (await client.post("/v1/embeddings", json=payload)).json()
    second = (await client.post("/v1/embeddings", json=payload)).json()
    assert first["object"] == "list"
    assert [d["index"] for d in first["data"]] == [0, 1]
    vectors = [np.array(d["embedding"]) for d in first["data"]]
    assert all(v.shape == (1536,) for v in vectors)
    assert all(abs(np.linalg.norm(v) - 1) < 1e-6 for v in vectors)
    assert not np.allclose(vectors[0], vectors[1])
    assert first["data"] == second["data"]
    assert first["usage"]["prompt_tokens"] > 0

    small = (await client.post("/v1/embeddings", json={**payload, "dimensions": 64})).json()
    assert len(small["data"][0]["embedding"]) == 64

    encoded = (await client.post("/v1/embeddings", json={**payload, "encoding_format": "base64"})).json()
    decoded = np.frombuffer(base64.b64decode(encoded["data"][0]["embedding"]), dtype="<f4")
    assert np.allclose(decoded, vectors[0], atol=1e-6)
