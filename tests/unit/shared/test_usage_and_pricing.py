"""Token counts from either API format's usage, and what they cost (prompt-cache reads and writes included)."""

from __future__ import annotations

import pytest

from shared.pricing import PriceBook
from shared.usage import TokenCounts, token_counts


def test_openai_and_anthropic_usage_count_alike() -> None:
    openai = {"prompt_tokens": 115, "completion_tokens": 20, "prompt_tokens_details": {"cached_tokens": 100}}
    assert token_counts(openai) == TokenCounts(prompt=115, completion=20, cache_read=100)
    anthropic = {
        "input_tokens": 10,
        "output_tokens": 20,
        "cache_read_input_tokens": 100,
        "cache_creation_input_tokens": 5,
    }
    assert token_counts(anthropic) == TokenCounts(prompt=115, completion=20, cache_read=100, cache_write=5)
    assert token_counts(anthropic).total == 135
    assert token_counts(None) == token_counts({}) == TokenCounts()
    assert token_counts({"prompt_tokens": "7", "completion_tokens": True}) == TokenCounts()


def test_claude_and_embedding_models_are_priced() -> None:
    prices = PriceBook()
    sonnet = prices.cost("claude-sonnet-4-5", 1000, 100)
    assert sonnet == pytest.approx(1000 * 3e-6 + 100 * 15e-6)  # not the long-context tier
    cached = prices.cost("claude-sonnet-4-5", 1000, 100, cache_read_tokens=800)
    assert cached == pytest.approx(200 * 3e-6 + 800 * 0.3e-6 + 100 * 15e-6)
    assert prices.cost("claude-sonnet-4-5", 300_000, 0) == pytest.approx(300_000 * 6e-6)  # the >200k tier
    assert prices.cost("text-embedding-3-small", 1_000_000, 0) == pytest.approx(0.02)
    assert prices.cost("no-such-model", 10, 10) == 0.0


def test_texts_and_estimated_tokens_of_bodies_and_chunks_in_either_format() -> None:
    from shared.usage import estimated_tokens, texts_in

    assert estimated_tokens("") == 0 and estimated_tokens("abcd") == 1 and estimated_tokens("abcde") == 2
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Hi there"}, {"type": "image_url", "image_url": {}}]},
    ]
    assert texts_in(messages) == ["Be brief.", "Hi there"]
    openai_chunk = {"choices": [{"delta": {"content": "Hel", "tool_calls": [{"function": {"arguments": "{}"}}]}}]}
    anthropic_event = {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "lo"}}
    assert texts_in(openai_chunk) == ["Hel", "{}"] and texts_in(anthropic_event) == ["lo"]
    assert texts_in({"system": "You are terse."}) == ["You are terse."]
