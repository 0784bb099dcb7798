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


def partition(body: dict, match: str = "exact") -> str:
    return keys.partition_key("t", "default", body, "e", match)  # type: ignore[arg-type]


def test_by_default_every_earlier_turn_must_be_the_same_text() -> None:
    gym, rome = chat("Can you cancel my gym membership?"), chat("Can you cancel my flight to Rome?")
    assert partition(gym) != partition(rome)
    # Case, spaces and punctuation are no difference.
    assert partition(gym) == partition(chat("can you cancel my gym membership  "))
    # An assistant's turn is part of the history too: another offer is another situation.
    offer = chat("Can you cancel my gym membership?")
    offer["messages"][2]["content"] = "Sure, or I can pause it for three months instead."
    assert partition(offer) != partition(gym)


def test_a_difference_anywhere_in_a_long_history_counts() -> None:
    """The same chat with another name in its first turn, 1,800 characters before the question, is another chat."""
    filler = "Here is some background on my project. " * 46

    def introduce(name: str) -> dict:
        return {
            "model": "m",
            "messages": [
                {"role": "user", "content": f"My name is {name}. {filler}"},
                {"role": "assistant", "content": "Thanks, noted."},
                {"role": "user", "content": "What is my name?"},
            ],
        }

    alice, bob = introduce("Alice Smith"), introduce("Bob Jones")
    assert len(alice["messages"][0]["content"]) > 1800
    for match in ("exact", "aligned"):
        assert partition(alice, match) == partition(introduce("Alice Smith"), match)
    assert partition(alice, "exact") != partition(bob, "exact")
    # Under the aligned match the verifier compares the turns, so they are kept whole.
    assert keys.conversation(bob).turns == (
        ("user", f"My name is Bob Jones. {filler}".strip()),
        ("assistant", "Thanks, noted."),
    )


def test_the_aligned_match_leaves_plain_histories_to_the_verifier() -> None:
    gym = chat("Can you cancel my gym membership?")
    reworded = chat("please cancel my gym membership")
    assert partition(gym, "aligned") == partition(reworded, "aligned")
    assert partition(gym, "exact") != partition(reworded, "exact")
    # A question asked alone shares its partition with the same question at the end of a chat.
    single = {"model": "m", "messages": [chat("x")["messages"][0], chat("x")["messages"][-1]]}
    assert partition(single, "aligned") == partition(gym, "aligned") == partition(single, "exact")


def test_under_the_exact_match_single_and_multi_turn_requests_never_share_a_partition() -> None:
    single = {"model": "m", "messages": [{"role": "system", "content": "Be helpful."}, chat("x")["messages"][-1]]}
    assert keys.conversation(single).empty and keys.conversation(single).turns is None
    assert partition(single, "exact") != partition(chat("x"), "exact")


def test_the_aligned_match_embeds_the_situation_nearest_turns_first() -> None:
    history = keys.conversation(chat("Can you cancel my gym membership?"))
    assert history.embedded("yes please", "aligned") == "yes please\nSure.\nCan you cancel my gym membership?"
    assert history.embedded("yes please", "exact") == "yes please"
    assert keys.conversation({"messages": [{"role": "user", "content": "hi"}]}).embedded("hi", "aligned") == "hi"


def test_a_history_with_tool_turns_is_matched_exactly() -> None:
    def with_tool(result: str) -> dict:
        body = chat("What's the weather?")
        body["messages"].insert(3, {"role": "tool", "tool_call_id": "c1", "content": result})
        return body

    sunny, rainy = with_tool("sunny"), with_tool("rainy")
    assert keys.conversation(sunny).turns is None
    for match in ("exact", "aligned"):
        assert partition(sunny, match) != partition(rainy, match)
        assert partition(sunny, match) == partition(with_tool("sunny"), match)


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
    assert keys.conversation(named).turns is None
    assert keys.conversation(named).history_hash is not None


def test_empty_fields_of_a_message_sent_back_from_the_sdk_change_nothing() -> None:
    plain = chat("Can you cancel my gym membership?")
    echoed = copy.deepcopy(plain)
    echoed["messages"][2].update({"refusal": None, "tool_calls": [], "annotations": [], "audio": None})
    echoed["messages"][3]["name"] = None
    assert keys.conversation(echoed) == keys.conversation(plain)
    assert keys.partition_key("t", "d", echoed, "e") == keys.partition_key("t", "d", plain, "e")
