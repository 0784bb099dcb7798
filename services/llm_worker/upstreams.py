"""The worker's upstreams: one provider per configured upstream, picked per request by its model."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from services.llm_worker.providers import Provider, make_provider
from services.llm_worker.providers.base import UpstreamError
from services.llm_worker.routing import UpstreamConfig, route
from shared.contracts.base import ErrorInfo

log = logging.getLogger(__name__)


def model_not_found(model: str) -> UpstreamError:
    """OpenAI's answer for a model it does not serve."""
    return UpstreamError(
        ErrorInfo(
            type="invalid_request_error",
            message=f"The model '{model}' does not exist or you do not have access to it.",
            status=404,
            code="model_not_found",
            param="model",
        ),
        "invalid",
    )


class Upstreams:
    """Routes models to providers (the routes file's order) and lists the models of all of them."""

    def __init__(self, providers: list[Provider]) -> None:
        self.providers = providers
        self._by_name = {provider.config.name: provider for provider in providers}

    @classmethod
    def from_configs(cls, configs: list[UpstreamConfig], *, timeout: float, max_retries: int) -> Upstreams:
        return cls([make_provider(config, timeout=timeout, max_retries=max_retries) for config in configs])

    @property
    def uses_mock(self) -> bool:
        return any(provider.config.is_mock for provider in self.providers)

    def for_model(self, model: Any) -> Provider:
        """The provider serving `model`, or UpstreamError 404 model_not_found."""
        if not isinstance(model, str):
            raise model_not_found(str(model))
        config = route(model, (provider.config for provider in self.providers))
        if config is None:
            raise model_not_found(model)
        return self._by_name[config.name]

    async def list_models(self) -> list[dict[str, Any]]:
        """Every upstream's models that a request would be routed to it for, first upstream first.

        An upstream that fails to list is left out (and logged); UpstreamError only when all fail.
        """
        results = await asyncio.gather(*(p.list_models() for p in self.providers), return_exceptions=True)
        models: list[dict[str, Any]] = []
        seen: set[str] = set()
        failures = []
        for provider, result in zip(self.providers, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("listing the models of upstream %s failed: %s", provider.name, result)
                failures.append(result)
                continue
            for model in result:
                model_id = model.get("id")
                if isinstance(model_id, str) and model_id not in seen and self._routes_to(model_id, provider):
                    seen.add(model_id)
                    models.append(model)
        if failures and len(failures) == len(self.providers):
            raise failures[0]
        return models

    def _routes_to(self, model: str, provider: Provider) -> bool:
        config = route(model, (p.config for p in self.providers))
        return config is not None and config.name == provider.config.name

    async def close(self) -> None:
        for provider in self.providers:
            await provider.close()
