"""Upstream providers, one module per API; `make_provider` builds the one an upstream's config names."""

from __future__ import annotations

from services.llm_worker.providers.anthropic import AnthropicProvider
from services.llm_worker.providers.base import Provider, UpstreamError
from services.llm_worker.providers.openai_compatible import OpenAICompatibleProvider
from services.llm_worker.routing import UpstreamConfig

__all__ = ["AnthropicProvider", "OpenAICompatibleProvider", "Provider", "UpstreamError", "make_provider"]


def make_provider(config: UpstreamConfig, *, timeout: float, max_retries: int) -> Provider:
    """The provider of one upstream (its SDK client created, no call made)."""
    if config.provider == "anthropic":
        return AnthropicProvider(config, timeout=timeout, max_retries=max_retries)
    return OpenAICompatibleProvider(config, timeout=timeout, max_retries=max_retries)
