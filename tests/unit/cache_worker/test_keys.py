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


def test_earlier_turns_are_part_of_the_partition() -> None:
    def chat(history: str) -> dict:
        return {
            "model": "m",
            "messages": [
                {"role": "user", "content": history},
                {"role": "assistant", "content": "Sure."},
                {"role": "user", "content": "Yes, cancel it."},
            ],
        }

    a = keys.partition_key("t", "default", chat("Can you cancel my gym membership?"), "e")
    b = keys.partition_key("t", "default", chat("Can you cancel my flight to Rome?"), "e")
    assert a != b


def test_semantic_prompt_is_the_last_user_text() -> None:
    assert keys.semantic_prompt(BASE) == "What is the boiling point of water?"
    parts = {"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]}
    assert keys.semantic_prompt(parts) == "a\nb"
    image = {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}
    assert keys.semantic_prompt(image) is None
    tool_last = {"messages": [{"role": "user", "content": "hi"}, {"role": "tool", "content": "42"}]}
    assert keys.semantic_prompt(tool_last) is None
