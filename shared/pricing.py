"""What tokens cost: prices from the maintained `genai-prices` database, overridable per model.

Used by the LLM worker (cost of a miss) and the cache worker (cost saved by a hit). Custom and
self-hosted models get prices from a JSON file (`PRICES_FILE`): {"model": {"input_per_mtok": 0.1,
"output_per_mtok": 0.4}}. A model nobody knows costs 0 and is logged once.
"""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from genai_prices import Usage, calc_price

log = logging.getLogger(__name__)

# Per-token prices are derived from a request of this many tokens: below the long-context tiers
# (Claude's prices change past 200k prompt tokens). Larger prompts are priced by genai-prices itself.
REFERENCE_TOKENS = 10_000
TIERED_PROMPT_TOKENS = 128_000
# genai-prices finds most chat models by name alone; embedding models need their provider named.
PROVIDERS_TO_TRY: tuple[str | None, ...] = (None, "openai", "anthropic")


@dataclass(frozen=True)
class TokenPrices:
    """USD per token: uncached input, cache read, cache write, output."""

    input: float
    cache_read: float
    cache_write: float
    output: float
    provider: str | None


class PriceBook:
    """Looks up the USD cost of a request's tokens for a model."""

    def __init__(self, prices_file: str | None = None) -> None:
        self._custom: dict[str, tuple[float, float]] = {}
        if prices_file:
            for model, price in json.loads(Path(prices_file).read_text()).items():
                self._custom[model] = (float(price["input_per_mtok"]), float(price["output_per_mtok"]))
        self._unknown: set[str] = set()

    def cost(
        self,
        model: str,
        prompt_tokens: int,
        completion_tokens: int,
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
    ) -> float:
        """USD cost of `prompt_tokens` in (of which some read from or written to the provider's prompt cache)
        and `completion_tokens` out on `model` (0 when unknown)."""
        if model in self._custom:
            per_in, per_out = self._custom[model]
            return (prompt_tokens * per_in + completion_tokens * per_out) / 1_000_000
        prices = _token_prices(model)
        if prices is None:
            if model not in self._unknown:
                self._unknown.add(model)
                log.warning("no price known for model %r: its cost counts as 0 (add it to PRICES_FILE)", model)
            return 0.0
        cache_read = min(cache_read_tokens, prompt_tokens)
        cache_write = min(cache_write_tokens, prompt_tokens - cache_read)
        if prompt_tokens > TIERED_PROMPT_TOKENS:
            return _exact_price(model, prices.provider, prompt_tokens, completion_tokens, cache_read, cache_write)
        uncached = prompt_tokens - cache_read - cache_write
        return (
            uncached * prices.input
            + cache_read * prices.cache_read
            + cache_write * prices.cache_write
            + completion_tokens * prices.output
        )


@functools.lru_cache(maxsize=256)
def _token_prices(model: str) -> TokenPrices | None:
    """Per-token prices for a model, derived once from genai-prices (a lookup costs ~0.1 ms)."""
    for provider in PROVIDERS_TO_TRY:
        try:
            per = [
                _exact_price(model, provider, REFERENCE_TOKENS, 0, 0, 0),
                _exact_price(model, provider, REFERENCE_TOKENS, 0, REFERENCE_TOKENS, 0),
                _exact_price(model, provider, REFERENCE_TOKENS, 0, 0, REFERENCE_TOKENS),
                _exact_price(model, provider, 0, REFERENCE_TOKENS, 0, 0),
            ]
        except LookupError:
            continue
        per_in, per_read, per_write, per_out = (price / REFERENCE_TOKENS for price in per)
        return TokenPrices(per_in, per_read, per_write, per_out, provider)
    return None


def _exact_price(
    model: str, provider: str | None, prompt: int, completion: int, cache_read: int, cache_write: int
) -> float:
    usage = Usage(
        input_tokens=prompt, output_tokens=completion, cache_read_tokens=cache_read, cache_write_tokens=cache_write
    )
    return float(calc_price(usage, model, provider_id=provider).total_price)
