"""Several upstreams routed by model, the Anthropic upstream for OpenAI-format requests, and the Messages
endpoint, through the real services: the openai SDK and the anthropic SDK as the clients, the anthropic
SDK as the LLM worker's client of the mock's Messages API (the routes file of tests/integration/stack.py)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.conftest import MockUpstream, wait_until
from tests.integration.stack import ANTHROPIC_KEY, LOCAL_KEY, Stack

pytestmark = pytest.mark.integration

CLAUDE = "claude-haiku-4-5"
QUESTION = "What is the boiling point of water at sea level?"
PARAPHRASE = "What is water's boiling point at sea level?"
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"query": {"type": "string"}}},
    },
}


@pytest.fixture(scope="module")
def claude_client(stack: Stack) -> Iterator[anthropic.Anthropic]:
    """The anthropic SDK pointed at the proxy, with the proxy's key, as a user would."""
    with anthropic.Anthropic(base_url=stack.base_url, api_key=stack.env["DEV_API_KEY"], max_retries=0) as sdk:
        yield sdk


def unique(text: str) -> str:
    return f"{text} [{uuid.uuid4().hex[:6]}]"


def stats_of(mock: MockUpstream) -> dict[str, Any]:
    return mock.stats()


# --- OpenAI-format requests to the Anthropic upstream --------------------------------------------


def test_a_claude_model_goes_to_anthropic_then_hits_exactly_and_semantically(
    client: openai.OpenAI, mock: MockUpstream, stored
) -> None:
    system = {"role": "system", "content": f"You are a physics tutor ({uuid.uuid4().hex[:6]})."}

    def ask(question: str) -> tuple[Any, httpx.Headers]:
        raw = client.chat.completions.with_raw_response.create(
            model=CLAUDE, messages=[system, {"role": "user", "content": question}]
        )
        return raw.parse(), raw.headers

    before = stats_of(mock)
    first, headers = ask(QUESTION)
    after = stats_of(mock)
    assert headers["x-cache"] == "MISS"
    assert after["messages_calls"] == before["messages_calls"] + 1  # Anthropic's API, not chat completions
    assert after["chat_calls"] == before["chat_calls"]
    assert after["calls_by_key"].get(ANTHROPIC_KEY, 0) == before["calls_by_key"].get(ANTHROPIC_KEY, 0) + 1
    assert first.object == "chat.completion" and first.model == CLAUDE
    assert first.choices[0].finish_reason == "stop"
    assert "boiling point" in (first.choices[0].message.content or "")
    assert first.usage is not None and first.usage.prompt_tokens > 0 and first.usage.completion_tokens > 0
    assert first.usage.total_tokens == first.usage.prompt_tokens + first.usage.completion_tokens
    stored(headers["x-cache-key"])

    again, headers = ask(QUESTION)
    assert (headers["x-cache"], headers["x-cache-match"]) == ("HIT", "exact")
    assert again.choices[0].message.content == first.choices[0].message.content
    paraphrase, headers = ask(PARAPHRASE)
    assert (headers["x-cache"], headers["x-cache-match"]) == ("HIT", "semantic")
    assert paraphrase.choices[0].message.content == first.choices[0].message.content
    assert stats_of(mock)["messages_calls"] == after["messages_calls"]


def test_a_streamed_claude_answer_is_openai_chunks_with_usage_and_replays_from_the_cache(
    client: openai.OpenAI, mock: MockUpstream, stored
) -> None:
    question = unique("Name three primary colors.")

    def ask_streamed() -> tuple[str, str | None, Any, httpx.Headers]:
        raw = client.chat.completions.with_raw_response.create(
            model=CLAUDE,
            messages=[{"role": "user", "content": question}],
            stream=True,
            stream_options={"include_usage": True},
        )
        text, finish, usage = [], None, None
        for chunk in raw.parse():
            assert chunk.object == "chat.completion.chunk"
            for choice in chunk.choices:
                text.append(choice.delta.content or "")
                finish = choice.finish_reason or finish
            usage = chunk.usage or usage
        return "".join(text), finish, usage, raw.headers

    streams = stats_of(mock)["messages_stream_calls"]
    text, finish, usage, headers = ask_streamed()
    assert headers["x-cache"] == "MISS"
    assert stats_of(mock)["messages_stream_calls"] == streams + 1
    assert question.split(" [")[0] in text and finish == "stop"
    assert usage is not None and usage.completion_tokens > 0
    stored(headers["x-cache-key"])
    replayed, finish, usage, headers = ask_streamed()
    assert headers["x-cache"] == "HIT"
    assert (replayed, finish) == (text, "stop")
    assert usage is not None and usage.total_tokens > 0
    whole = client.chat.completions.create(model=CLAUDE, messages=[{"role": "user", "content": question}])
    assert whole.choices[0].message.content == text  # the stored answer, assembled from the events
    assert stats_of(mock)["messages_stream_calls"] == streams + 1


def test_a_tool_use_round_trip_through_the_anthropic_upstream(client: openai.OpenAI, mock: MockUpstream) -> None:
    messages: list[dict[str, Any]] = [{"role": "user", "content": unique("Please call tool: weather in Paris")}]
    asked = client.chat.completions.create(model=CLAUDE, messages=messages, tools=[WEATHER_TOOL], tool_choice="auto")
    choice = asked.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.type == "function" and call.function.name == "get_weather" and call.id.startswith("toolu_")
    assert "weather in Paris" in json.loads(call.function.arguments)["query"]

    # Streamed, the same call arrives as tool_calls deltas.
    stream = client.chat.completions.create(model=CLAUDE, messages=messages, tools=[WEATHER_TOOL], stream=True)
    name, arguments, finish = "", "", None
    for chunk in stream:
        for delta_choice in chunk.choices:
            for delta in delta_choice.delta.tool_calls or []:
                name += delta.function.name or "" if delta.function else ""
                arguments += delta.function.arguments or "" if delta.function else ""
            finish = delta_choice.finish_reason or finish
    assert (name, json.loads(arguments), finish) == ("get_weather", json.loads(call.function.arguments), "tool_calls")

    messages += [
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump(exclude_none=True)]},
        {"role": "tool", "tool_call_id": call.id, "content": "18C and sunny"},
    ]
    answered = client.chat.completions.create(model=CLAUDE, messages=messages, tools=[WEATHER_TOOL])
    assert answered.choices[0].finish_reason == "stop"
    assert "18C and sunny" in (answered.choices[0].message.content or "")  # the tool_result reached Anthropic


@pytest.mark.parametrize(
    ("extra", "param"),
    [({"n": 2}, "n"), ({"logprobs": True}, "logprobs"), ({"frequency_penalty": 0.5}, "frequency_penalty")],
)
def test_what_has_no_translation_is_a_400_naming_it(
    client: openai.OpenAI, mock: MockUpstream, extra: dict[str, Any], param: str
) -> None:
    calls = stats_of(mock)["messages_calls"]
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model=CLAUDE, messages=[{"role": "user", "content": unique("Hi")}], **extra)
    error = refused.value.body
    assert isinstance(error, dict) and error["param"] == param and param in error["message"]
    assert stats_of(mock)["messages_calls"] == calls


def test_anthropic_errors_become_openai_errors_with_their_status(client: openai.OpenAI, mock: MockUpstream) -> None:
    def fails(status: int, **spec: Any) -> openai.APIStatusError:
        mock.fail(status, **spec)
        try:
            with pytest.raises(openai.APIStatusError) as raised:
                client.chat.completions.create(model=CLAUDE, messages=[{"role": "user", "content": unique("Hi")}])
        finally:
            mock.clear_faults()
        return raised.value

    overloaded = fails(529)
    assert overloaded.status_code == 503 and int(overloaded.response.headers["retry-after"]) >= 1
    assert overloaded.body["type"] == "service_unavailable"  # type: ignore[index]
    limited = fails(429, retry_after=7)
    assert limited.status_code == 429 and limited.response.headers["retry-after"] == "7"
    assert limited.body["code"] == "rate_limit_exceeded"  # type: ignore[index]
    refused = fails(401)
    assert refused.status_code == 502 and refused.body["type"] == "upstream_auth_error"  # type: ignore[index]
    assert refused.response.headers["x-should-retry"] == "false"


# --- routing ---------------------------------------------------------------------------------------


def test_models_route_to_their_upstream_and_an_unknown_model_is_a_404(
    client: openai.OpenAI, mock: MockUpstream
) -> None:
    before = stats_of(mock)["calls_by_key"].get(LOCAL_KEY, 0)
    local = client.chat.completions.create(model="llama3.1:8b", messages=[{"role": "user", "content": unique("Hi")}])
    assert local.choices[0].message.content
    assert stats_of(mock)["calls_by_key"].get(LOCAL_KEY, 0) == before + 1  # the local upstream, with its key

    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="mistral-large", messages=[{"role": "user", "content": "Hi"}])
    assert missing.value.body["code"] == "model_not_found"  # type: ignore[index]

    listed = {model.id for model in client.models.list().data}
    assert {"claude-sonnet-4-5", "claude-haiku-4-5", "gpt-4o-mini", "mock-llm"} <= listed  # both APIs' lists


def test_the_anthropic_sdk_lists_models_in_its_format(claude_client: anthropic.Anthropic) -> None:
    listed = list(claude_client.models.list())
    assert {"claude-haiku-4-5", "gpt-4o-mini"} <= {model.id for model in listed}
    assert all(model.type == "model" and model.created_at.year >= 1970 for model in listed)


# --- the Messages endpoint -------------------------------------------------------------------------


def test_messages_miss_exact_hit_semantic_hit_usage_and_the_protocol_partition(
    claude_client: anthropic.Anthropic, client: openai.OpenAI, mock: MockUpstream, stack: Stack, stored
) -> None:
    system = f"You are a physics tutor ({uuid.uuid4().hex[:6]})."

    def ask(question: str) -> tuple[Any, httpx.Headers]:
        raw = claude_client.messages.with_raw_response.create(
            model=CLAUDE, max_tokens=300, system=system, messages=[{"role": "user", "content": question}]
        )
        return raw.parse(), raw.headers

    calls = stats_of(mock)["messages_calls"]
    first, headers = ask(QUESTION)
    first_request_id = headers["x-request-id"]
    assert headers["x-cache"] == "MISS"
    assert first.type == "message" and first.stop_reason == "end_turn"
    assert first.content[0].type == "text" and "boiling point" in first.content[0].text
    assert first.usage.input_tokens > 0 and first.usage.output_tokens > 0
    assert stats_of(mock)["messages_calls"] == calls + 1
    stored(headers["x-cache-key"])

    again, headers = ask(QUESTION)
    again_request_id = headers["x-request-id"]
    assert (headers["x-cache"], headers["x-cache-match"]) == ("HIT", "exact")
    assert again.content[0].text == first.content[0].text and again.id != first.id
    paraphrase, headers = ask(PARAPHRASE)
    assert (headers["x-cache"], headers["x-cache-match"]) == ("HIT", "semantic")
    assert paraphrase.content[0].text == first.content[0].text
    assert stats_of(mock)["messages_calls"] == calls + 1
    request_ids = {first_request_id, again_request_id, headers["x-request-id"]}

    # Usage and cost: the miss cost what genai-prices says Claude costs; the hits saved it.
    def logged() -> list[dict[str, Any]] | None:
        page = httpx.get(
            f"{stack.base_url}/api/v1/usage", params={"model": CLAUDE, "limit": 50}, headers=stack.auth, timeout=10
        ).json()["data"]
        rows = [row for row in page if row["request_id"] in request_ids]
        return rows if len(rows) == 3 else None

    rows = wait_until(logged, timeout=15)
    by_result = {row["result"]: row for row in rows}
    assert by_result["miss"]["cost_usd"] > 0 and by_result["miss"]["prompt_tokens"] == first.usage.input_tokens
    assert by_result["hit_exact"]["cost_saved_usd"] == pytest.approx(by_result["miss"]["cost_usd"])
    assert by_result["hit_semantic"]["tokens_saved"] > 0

    # The same fields in OpenAI's format are another request: a Messages answer never answers it.
    question = unique("Which planet is the largest?")
    stored_raw = claude_client.messages.with_raw_response.create(
        model=CLAUDE, max_tokens=200, messages=[{"role": "user", "content": question}]
    )
    stored(stored_raw.headers["x-cache-key"])
    raw = client.chat.completions.with_raw_response.create(
        model=CLAUDE, max_tokens=200, messages=[{"role": "user", "content": question}]
    )
    assert raw.headers["x-cache"] == "MISS" and raw.headers["x-cache-key"] != stored_raw.headers["x-cache-key"]
    assert raw.parse().object == "chat.completion"


def test_messages_stream_and_its_replay_are_anthropic_event_sequences(
    claude_client: anthropic.Anthropic, mock: MockUpstream, stored
) -> None:
    question = unique("Count to five.")
    texts, keys = [], []
    for expected in ("MISS", "HIT"):
        with claude_client.messages.with_streaming_response.create(
            model=CLAUDE, max_tokens=300, messages=[{"role": "user", "content": question}], stream=True
        ) as response:
            assert response.headers["x-cache"] == expected
            keys.append(response.headers["x-cache-key"])
            kinds = [event.type for event in response.parse()]
        assert kinds[0] == "message_start" and kinds[-1] == "message_stop" and "content_block_delta" in kinds
        with claude_client.messages.stream(
            model=CLAUDE, max_tokens=300, messages=[{"role": "user", "content": question}]
        ) as stream:
            final = stream.get_final_message()
        texts.append(final.content[0].text)
        assert final.stop_reason == "end_turn" and final.usage.output_tokens > 0
        if expected == "MISS":
            stored(keys[0])
    assert texts[0] == texts[1] and "Count to five." in texts[0]
    assert stats_of(mock)["messages_stream_calls"] >= 1


def test_messages_to_an_openai_compatible_upstream_are_translated(
    claude_client: anthropic.Anthropic, mock: MockUpstream
) -> None:
    chats = stats_of(mock)["chat_calls"]
    question = unique("Why is the sky blue?")
    message = claude_client.messages.create(
        model="gpt-4o-mini", max_tokens=300, messages=[{"role": "user", "content": question}]
    )
    assert stats_of(mock)["chat_calls"] == chats + 1  # sent as a chat completion
    assert message.type == "message" and message.stop_reason == "end_turn"
    assert question in message.content[0].text and message.usage.input_tokens > 0
    with claude_client.messages.stream(
        model="gpt-4o-mini", max_tokens=300, messages=[{"role": "user", "content": unique("Stream it")}]
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "end_turn" and "Stream it" in final.content[0].text
    assert final.usage.output_tokens > 0

    tool = {"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}
    called = claude_client.messages.create(
        model="gpt-4o-mini",
        max_tokens=300,
        tools=[tool],  # type: ignore[list-item]
        messages=[{"role": "user", "content": unique("Please call tool for Paris")}],
    )
    assert called.stop_reason == "tool_use" and called.content[-1].type == "tool_use"

    # max_tokens goes as max_completion_tokens, which the upstream honours; top_k has no translation.
    cut = claude_client.messages.create(
        model="gpt-4o-mini", max_tokens=3, messages=[{"role": "user", "content": unique("Tell me a long story")}]
    )
    assert cut.stop_reason == "max_tokens"
    with pytest.raises(anthropic.BadRequestError) as refused:
        claude_client.messages.create(
            model="gpt-4o-mini",
            max_tokens=30,
            messages=[{"role": "user", "content": unique("Hi")}],
            extra_body={"top_k": 5},
        )
    assert "top_k" in refused.value.body["error"]["message"]  # type: ignore[index]


def test_messages_errors_are_in_anthropics_format(
    claude_client: anthropic.Anthropic, stack: Stack, mock: MockUpstream
) -> None:
    with pytest.raises(anthropic.NotFoundError) as missing:
        claude_client.messages.create(
            model="mistral-large", max_tokens=10, messages=[{"role": "user", "content": "Hi"}]
        )
    assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    with pytest.raises(anthropic.NotFoundError) as unserved:  # no count_tokens here, said in Anthropic's format
        claude_client.messages.count_tokens(model=CLAUDE, messages=[{"role": "user", "content": "Hi"}])
    assert unserved.value.body["type"] == "error"  # type: ignore[index]
    assert unserved.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]

    mock.fail(429, retry_after=3)
    try:
        with pytest.raises(anthropic.RateLimitError) as limited:
            claude_client.messages.create(
                model=CLAUDE, max_tokens=10, messages=[{"role": "user", "content": unique("Hi")}]
            )
    finally:
        mock.clear_faults()
    assert limited.value.response.headers["retry-after"] == "3"
    assert limited.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]

    no_max_tokens = httpx.post(
        f"{stack.base_url}/v1/messages",
        json={"model": CLAUDE, "messages": [{"role": "user", "content": "Hi"}]},
        headers={"x-api-key": stack.env["DEV_API_KEY"]},
    )
    assert no_max_tokens.status_code == 400
    assert no_max_tokens.json()["type"] == "error"
    assert no_max_tokens.json()["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in no_max_tokens.json()["error"]["message"]
    no_key = httpx.post(f"{stack.base_url}/v1/messages", json={"model": CLAUDE})
    assert (no_key.status_code, no_key.json()["error"]["type"]) == (401, "authentication_error")
