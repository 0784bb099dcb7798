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
