"""Run the LLM worker: `python -m services.llm_worker.main`.

Wiring only: settings, logging, the broker worker, one provider per upstream (the routes file's, or
the env vars' one), the consumers, and an orderly shutdown (stop consuming, let in-flight calls
finish, close the clients).
"""

from __future__ import annotations

import logging

from services.llm_worker.handlers import LlmRequestHandler
from services.llm_worker.settings import Settings
from services.llm_worker.upstreams import Upstreams
from shared.contracts.completions import RequestCancelled
from shared.contracts.control import ModelsResult
from shared.logs import setup_logging
from shared.pricing import PriceBook
from shared.tracing import setup_tracing
from shared.worker import Worker, run

log = logging.getLogger(__name__)


async def main() -> None:
    """Consume cache misses until SIGTERM/SIGINT."""
    settings = Settings()
    setup_logging("llm_worker", settings.log_level)
    setup_tracing("llm_worker", settings)
    # openai 3.x sends through httpx2, which logs every request at INFO (setup_logging quiets only "httpx").
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    upstreams = Upstreams.from_configs(
        settings.upstreams(), timeout=settings.upstream_timeout_seconds, max_retries=settings.upstream_max_retries
    )
    for provider in upstreams.providers:
        log.info(
            "upstream %s (%s API) at %s for models %s",
            provider.name,
            provider.protocol,
            provider.config.base_url,
            ", ".join(provider.config.models),
        )
    if upstreams.uses_mock and not settings.upstreams_file:
        log.warning(
            "NO UPSTREAM CONFIGURED: answering from the mock upstream at %s; set UPSTREAMS_FILE, "
            "UPSTREAM_BASE_URL or OPENAI_API_KEY",
            settings.mock_upstream_url,
        )
    prices = PriceBook(settings.prices_file or None)
    worker = Worker("llm_worker", settings)
    try:
        await worker.start()
        handler = LlmRequestHandler(
            upstreams,
            prices,
            worker.fast_channel,
            worker.exchange,
            worker.topology,
            upstream_timeout=settings.upstream_timeout_seconds,
            cache_tool_calls=settings.cache_tool_calls,
            default_max_tokens=settings.anthropic_default_max_tokens,
        )
        await worker.consume(worker.topology.llm_request, handler, prefetch=settings.llm_concurrency)

        async def on_cancelled(body: bytes) -> None:
            handler.cancel(RequestCancelled.model_validate_json(body).request_id)

        await worker.subscribe(worker.topology.cancellations, on_cancelled)

        async def health_checks() -> dict[str, bool]:
            # Not the upstream: a health probe per second must not become an upstream call per second.
            return {}

        async def list_models() -> ModelsResult:
            return ModelsResult(data=await upstreams.list_models())

        await worker.serve_control(health_checks, list_models)
        await worker.run_until_stopped()
    finally:
        await worker.close()
        await upstreams.close()


if __name__ == "__main__":
    run(main)
