"""What tokens cost: prices from the maintained `genai-prices` database, overridable per model.

Used by the LLM worker (cost of a miss) and the cache worker (cost saved by a hit). Custom and
self-hosted models get prices from a JSON file (`PRICES_FILE`): {"model": {"input_per_mtok": 0.1,
"output_per_mtok": 0.4}}. A model nobody knows costs 0 and is logged once.
"""

from __future__ import annotations

import functools
import json
import logging
from pathlib import Path

from genai_prices import Usage, calc_price

log = logging.getLogger(__name__)


class PriceBook:
    """Looks up the USD cost of a request's tokens for a model."""

    def __init__(self, prices_file: str | None = None) -> None:
        self._custom: dict[str, tuple[float, float]] = {}
        if prices_file:
            for model, price in json.loads(Path(prices_file).read_text()).items():
                self._custom[model] = (float(price["input_per_mtok"]), float(price["output_per_mtok"]))
        self._unknown: set[str] = set()

    def cost(self, model: str, prompt_tokens: int, completion_tokens: int) -> float:
        """USD cost of `prompt_tokens` in and `completion_tokens` out on `model` (0 when unknown)."""
        if model in self._custom:
            per_in, per_out = self._custom[model]
            return (prompt_tokens * per_in + completion_tokens * per_out) / 1_000_000
        per_token = _per_token_prices(model)
        if per_token is None:
            if model not in self._unknown:
                self._unknown.add(model)
                log.warning("no price known for model %r: its cost counts as 0 (add it to PRICES_FILE)", model)
            return 0.0
        return prompt_tokens * per_token[0] + completion_tokens * per_token[1]


@functools.lru_cache(maxsize=256)
def _per_token_prices(model: str) -> tuple[float, float] | None:
    """Per-token input and output prices for a model, derived once from genai-prices."""
    try:
        million = 1_000_000
        per_in = float(calc_price(Usage(input_tokens=million, output_tokens=0), model).total_price) / million
        per_out = float(calc_price(Usage(input_tokens=0, output_tokens=million), model).total_price) / million
    except LookupError:
        return None
    return per_in, per_out
