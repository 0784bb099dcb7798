"""The exact key and the semantic partition: what must and must not change them."""

from __future__ import annotations

import copy
import json

import pytest

from services.cache_worker import keys

BASE = {
    "model": "gpt-4o-mini",
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is the boiling point of water?"},
    ],
    "temperature": 0.2,
}


def key(body, tenant="t1", namespace="default"):  # type: ignore[no-untyped-def]
    return keys.exact_key(tenant, namespace, body)


def test_the_same_request_with_keys_in_another_order_gives_the_same_key() -> None:
    reordered = dict(reversed(list(BASE.items())))
    reordered["messages"] = [dict(reversed(list(m.items()))) for m in BASE["messages"]]
    assert json.dumps(reordered) != json.dumps(BASE)
    assert key(reordered) == key(BASE)
    assert len(key(BASE)) == 64


@pytest.mark.parametrize(
    "field,value",
    [
        ("model", "gpt-4o"),
        ("temperature", 0.7),
        ("top_p", 0.5),
        ("max_tokens", 10),
        ("max_completion_tokens", 10),
        ("stop", ["\n"]),
        ("seed", 42),
        ("tools", [{"type": "function", "function": {"name": "f", "parameters": {}}}]),
        ("tool_choice", "auto"),
        ("response_format", {"type": "json_object"}),
        ("n", 2),
        ("presence_penalty", 0.5),
        ("frequency_penalty", 0.5),
        ("logit_bias", {"1": 5}),
        ("reasoning_effort", "high"),
    ],
)
def test_each_answer_affecting_parameter_changes_the_key(field: str, value: object) -> None:
    changed = copy.deepcopy(BASE)
    changed[field] = value
    assert key(changed) != key(BASE)


def test_messages_tenant_and_namespace_change_the_key() -> None:
    changed = copy.deepcopy(BASE)
    changed["messages"][1]["content"] = "What is the freezing point of water?"
    assert key(changed) != key(BASE)
    changed = copy.deepcopy(BASE)
    changed["messages"][0]["content"] = "Be verbose."
    assert key(changed) != key(BASE)
    assert key(BASE, tenant="t2") != key(BASE)
    assert key(BASE, namespace="other") != key(BASE)


@pytest.mark.parametrize(
    "field,value",
    [("stream", True), ("stream_options", {"include_usage": True}), ("user", "u-1"), ("metadata", {"a": "b"})],
)
def test_delivery_fields_do_not_change_the_key(field: str, value: object) -> None:
    changed = copy.deepcopy(BASE)
    changed[field] = value
    assert key(changed) == key(BASE)


def test_partition_ignores_only_the_last_user_message_wording() -> None:
    paraphrase = copy.deepcopy(BASE)
    paraphrase["messages"][1]["content"] = "At what temperature does water boil?"
    part = keys.partition_key("t1", "default", BASE, "all-MiniLM-L6-v2")
    assert keys.partition_key("t1", "default", paraphrase, "all-MiniLM-L6-v2") == part
    assert keys.partition_key("t2", "default", BASE, "all-MiniLM-L6-v2") != part
    assert keys.partition_key("t1", "default", BASE, "text-embedding-3-small") != part
    other_system = copy.deepcopy(BASE)
    other_system["messages"][0]["content"] = "Answer like a pirate."
    assert keys.partition_key("t1", "default", other_system, "all-MiniLM-L6-v2") != part
    hotter = {**BASE, "temperature": 0.9}
    assert keys.partition_key("t1", "default", hotter, "all-MiniLM-L6-v2") != part


def chat(history: str, last: str = "Yes, cancel it.") -> dict:
    return {
        "model": "m",
        "messages": [
            {"role": "system", "content": "Be helpful."},
            {"role": "user", "content": history},
            {"role": "assistant", "content": "Sure."},
            {"role": "user", "content": last},
        ],
    }


def test_a_plain_text_history_is_compared_by_meaning_not_by_partition() -> None:
    gym, rome = chat("Can you cancel my gym membership?"), chat("Can you cancel my flight to Rome?")
    assert keys.partition_key("t", "default", gym, "e") == keys.partition_key("t", "default", rome, "e")
    assert keys.conversation(gym).context_text == "user: Can you cancel my gym membership?\nassistant: Sure."
    assert keys.conversation(gym).context_text != keys.conversation(rome).context_text


def test_single_turn_and_multi_turn_requests_never_share_a_partition() -> None:
    single = {"model": "m", "messages": [{"role": "system", "content": "Be helpful."}, chat("x")["messages"][-1]]}
    assert keys.conversation(single).context_text is None
    assert keys.partition_key("t", "default", single, "e") != keys.partition_key("t", "default", chat("x"), "e")


def test_a_history_with_tool_turns_is_matched_exactly() -> None:
    def with_tool(result: str) -> dict:
        body = chat("What's the weather?")
        body["messages"].insert(3, {"role": "tool", "tool_call_id": "c1", "content": result})
        return body

    sunny, rainy = with_tool("sunny"), with_tool("rainy")
    assert keys.conversation(sunny).context_text is None
    assert keys.partition_key("t", "default", sunny, "e") != keys.partition_key("t", "default", rainy, "e")
    assert keys.partition_key("t", "default", sunny, "e") == keys.partition_key("t", "default", with_tool("sunny"), "e")


def test_long_histories_keep_their_most_recent_turns() -> None:
    body = chat("old " * 2000 + "RECENT")
    context = keys.conversation(body).context_text
    assert context is not None and len(context) <= keys.MAX_CONTEXT_CHARS and context.endswith("assistant: Sure.")
    assert "RECENT" in context


def test_a_long_history_is_cut_at_a_word() -> None:
    """A cut inside "2500" would leave "00": another number for the context rules."""
    for pad in range(40):
        body = chat("x" * pad + " My budget is 2500 dollars. " + "Which laptop should I buy? " * 60)
        context = keys.conversation(body).context_text
        assert context is not None and len(context) <= keys.MAX_CONTEXT_CHARS
        whole_words = {"My", "budget", "is", "2500", "dollars.", "Which", "laptop", "should", "I", "buy?"}
        assert context.split()[0] in whole_words


def test_semantic_prompt_is_the_last_user_text() -> None:
    assert keys.semantic_prompt(BASE) == "What is the boiling point of water?"
    parts = {"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]}
    assert keys.semantic_prompt(parts) == "a\nb"
    image = {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}
    assert keys.semantic_prompt(image) is None
    tool_last = {"messages": [{"role": "user", "content": "hi"}, {"role": "tool", "content": "42"}]}
    assert keys.semantic_prompt(tool_last) is None


# Keys of entries already stored (Redis and PostgreSQL): computed by the version before the spelling
# rules below; an ordinary request must keep them, or every stored entry is orphaned by an upgrade.
STORED_KEYS = [
    (
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "What is the boiling point of water?"}]},
        "cf392b7160504b4ddcb7dbb461c313cd0f86a5d62e0f19ad348c03377575ba7f",
        "6989bfd6c52fbec4116f9a693f864ce5bcc2ad74d3465accf863027ff44838fc",
    ),
    (
        {
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "What is the boiling point of water?"},
            ],
            "temperature": 0,
        },
        "3a8baf5e9f1a528effd90aaa190a86469ac8cf41242b4705fce454eb2e140fe2",
        "24533cece4b47774affc4623421ad547c9dfd538325680cb004af65d1a5c623d",
    ),
    (
        {
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": "What is the boiling point of water?"}],
            "temperature": 0.7,
            "top_p": 1,
        },
        "d88694b85678c402d2f1fe3d2cbd83669b8cc6b856f1fa1061d82a94f8c6070d",
        "d3fff67fe4af45891599d8d3ac008b5a4837c1aa9065c6040b9e5740edd5e2de",
    ),
]


@pytest.mark.parametrize(("body", "exact", "partition"), STORED_KEYS)
def test_ordinary_requests_keep_the_keys_of_stored_entries(body: dict, exact: str, partition: str) -> None:
    assert keys.exact_key("t1", "default", body) == exact
    assert keys.partition_key("t1", "default", body, "all-MiniLM-L6-v2") == partition


def test_one_request_in_several_spellings_has_one_key() -> None:
    # An explicit null is the default; a whole-number temperature is one temperature however written.
    assert key({**BASE, "temperature": 1}) == key({**BASE, "temperature": 1.0})
    assert key({**BASE, "temperature": 0}) == key({**BASE, "temperature": 0.0})
    assert key({**BASE, "top_p": None}) == key(BASE)
    assert key({**BASE, "temperature": 1}) != key({**BASE, "temperature": 0.2})
    assert key({**BASE, "seed": 1}) != key({**BASE, "seed": 2})


def test_the_participant_name_separates_partitions() -> None:
    def greet(name: str | None) -> dict:
        message = {"role": "user", "content": "Greet me by my name."} | ({"name": name} if name else {})
        return {"model": "m", "messages": [message]}

    alice, bob = keys.partition_key("t", "d", greet("alice"), "e"), keys.partition_key("t", "d", greet("bob"), "e")
    assert alice != bob
    assert alice == keys.partition_key("t", "d", greet("alice"), "e")
    assert keys.partition_key("t", "d", greet(None), "e") not in (alice, bob)
    # A named earlier turn is part of the history, compared exactly rather than by meaning.
    named = chat("Hi, I'm here.")
    named["messages"][1]["name"] = "alice"
    assert keys.conversation(named).context_text is None
    assert keys.conversation(named).history_hash is not None


def test_empty_fields_of_a_message_sent_back_from_the_sdk_change_nothing() -> None:
    plain = chat("Can you cancel my gym membership?")
    echoed = copy.deepcopy(plain)
    echoed["messages"][2].update({"refusal": None, "tool_calls": [], "annotations": [], "audio": None})
    echoed["messages"][3]["name"] = None
    assert keys.conversation(echoed) == keys.conversation(plain)
    assert keys.partition_key("t", "d", echoed, "e") == keys.partition_key("t", "d", plain, "e")
