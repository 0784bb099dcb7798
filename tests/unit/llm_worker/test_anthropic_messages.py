"""A streamed Message assembled from its events: the usage of message_start and message_delta together."""

from __future__ import annotations

from typing import Any

from services.llm_worker import anthropic_messages
from shared.pricing import PriceBook
from shared.usage import token_counts


def test_null_usage_fields_of_message_delta_keep_the_counts_of_message_start() -> None:
    start_usage = {"input_tokens": 25, "output_tokens": 1, "cache_read_input_tokens": 40, "service_tier": None}
    events: list[dict[str, Any]] = [
        {"type": "message_start", "message": {"id": "msg_1", "model": "claude-haiku-4-5", "usage": start_usage}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi."}},
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            # Anthropic's message_delta usage: output_tokens set, the other counts nullable.
            "usage": {
                "output_tokens": 12,
                "input_tokens": None,
                "cache_read_input_tokens": None,
                "cache_creation_input_tokens": None,
            },
        },
        {"type": "message_stop"},
    ]
    message = anthropic_messages.assemble(events)
    assert message["usage"] == {"input_tokens": 25, "output_tokens": 12, "cache_read_input_tokens": 40}
    tokens = token_counts(message["usage"])
    assert (tokens.prompt, tokens.completion, tokens.cache_read) == (65, 12, 40)
    assert PriceBook().cost("claude-haiku-4-5", tokens.prompt, tokens.completion, tokens.cache_read) > 0
