"""Token counts from an answer's `usage`, whichever API format it is in (OpenAI's or Anthropic's).

The LLM worker (cost of a miss), the cache worker (what a hit saved) and the gateway (per-key
token limits) all read usage from stored and fresh answers of both formats.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TokenCounts:
    """Tokens of one answer. `prompt` includes the cached prompt tokens (`cache_read`, `cache_write`)."""

    prompt: int = 0
    completion: int = 0
    cache_read: int = 0
    cache_write: int = 0

    @property
    def total(self) -> int:
        return self.prompt + self.completion


def token_counts(usage: Any) -> TokenCounts:
    """The counts of an OpenAI (`prompt_tokens`, ...) or Anthropic (`input_tokens`, ...) usage block.

    Anthropic's `input_tokens` leaves out the tokens read from and written to its prompt cache; here
    they are part of the prompt, as OpenAI counts its cached tokens.
    """
    if not isinstance(usage, dict):
        return TokenCounts()
    if "input_tokens" in usage or "output_tokens" in usage:
        read, write = _int(usage.get("cache_read_input_tokens")), _int(usage.get("cache_creation_input_tokens"))
        return TokenCounts(
            prompt=_int(usage.get("input_tokens")) + read + write,
            completion=_int(usage.get("output_tokens")),
            cache_read=read,
            cache_write=write,
        )
    details = usage.get("prompt_tokens_details")
    read = _int(details.get("cached_tokens")) if isinstance(details, dict) else 0
    return TokenCounts(
        prompt=_int(usage.get("prompt_tokens")),
        completion=_int(usage.get("completion_tokens")),
        cache_read=read,
        cache_write=_int(usage.get("cache_creation_input_tokens")),
    )


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
