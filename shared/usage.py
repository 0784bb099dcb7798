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


def usage_event_id(request_id: str) -> str:
    """The id of a request's usage event, the same from every service and every attempt: the usage log
    stores one row per id, so a request redone after a crash or a failed publish is counted once."""
    return f"req-{request_id}"


# Where a text's token count is not known (a stream the client left before its usage arrived).
CHARS_PER_TOKEN = 4
TEXT_KEYS = frozenset({"content", "text", "arguments", "partial_json", "refusal", "thinking"})


def estimated_tokens(text: str) -> int:
    """About how many tokens a text is (four characters a token, English's average)."""
    return -(-len(text) // CHARS_PER_TOKEN)


def texts_in(value: Any) -> list[str]:
    """The texts a request body or a streamed chunk carries (message contents, deltas, tool arguments),
    in either API format."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key in TEXT_KEYS and isinstance(item, str):
                found.append(item)
            elif key == "system" and isinstance(item, str):  # Anthropic's top-level system prompt
                found.append(item)
            else:
                found.extend(texts_in(item))
    elif isinstance(value, list):
        for item in value:
            found.extend(texts_in(item))
    return found
