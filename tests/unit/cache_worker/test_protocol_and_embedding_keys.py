"""The API format in the cache's keys, and the key of each embeddings input."""

from __future__ import annotations

from services.cache_worker import keys
from services.cache_worker.embeddings import embedding_key

BODY = {"model": "claude-haiku-4-5", "max_tokens": 100, "messages": [{"role": "user", "content": "Hi"}]}


def test_the_same_fields_in_another_api_format_are_another_request() -> None:
    openai = keys.exact_key("t", "default", BODY)
    assert keys.exact_key("t", "default", BODY, "openai") == openai  # OpenAI-format keys are what they were
    assert keys.exact_key("t", "default", BODY, "anthropic") != openai
    assert keys.partition_key("t", "default", BODY, "e", protocol="anthropic") != keys.partition_key(
        "t", "default", BODY, "e"
    )


def test_messages_requests_partition_by_system_and_parameters() -> None:
    with_system = {**BODY, "system": "Answer in French."}
    assert keys.partition_key("t", "d", with_system, "e", protocol="anthropic") != keys.partition_key(
        "t", "d", BODY, "e", protocol="anthropic"
    )
    assert keys.semantic_prompt(BODY) == "Hi"
    blocks = {**BODY, "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]}
    assert keys.semantic_prompt(blocks) == "Hi"


def test_each_embeddings_input_has_its_own_key_per_model_and_parameters() -> None:
    body = {"model": "text-embedding-3-small", "input": ["a", "b"], "user": "u1"}
    a = embedding_key("t", "default", body, "a")
    assert a != embedding_key("t", "default", body, "b")
    assert a == embedding_key("t", "default", {**body, "input": "a", "user": "u2"}, "a")  # who asked: no change
    assert a == embedding_key("t", "default", {**body, "encoding_format": "float"}, "a")  # the default, spelled out
    for other in ({"encoding_format": "base64"}, {"dimensions": 256}, {"model": "text-embedding-3-large"}):
        assert embedding_key("t", "default", {**body, **other}, "a") != a, other
    assert embedding_key("t2", "default", body, "a") != a and embedding_key("t", "ns", body, "a") != a
    assert embedding_key("t", "default", body, [1, 2]) != embedding_key("t", "default", body, "[1, 2]")
