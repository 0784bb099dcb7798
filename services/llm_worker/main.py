"""Run the LLM worker: `python -m services.llm_worker.main`.

Wiring only: settings, logging, the broker worker, the one upstream client, the consumers, and an
orderly shutdown (stop consuming, let in-flight calls finish, close the client).
"""

from __future__ import annotations

import logging

from services.llm_worker.handlers import LlmRequestHandler
from services.llm_worker.settings import Settings
from services.llm_worker.upstream import Upstream, choose_target, create_client
from shared.contracts import ModelsResult, RequestCancelled
from shared.logs import setup_logging
from shared.pricing import PriceBook
from shared.worker import Worker, run

log = logging.getLogger(__name__)


async def main() -> None:
    """Consume cache misses until SIGTERM/SIGINT."""
    settings = Settings()
    setup_logging("llm_worker", settings.log_level)
    # openai 3.x sends through httpx2, which logs every request at INFO (setup_logging quiets only "httpx").
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    target = choose_target(settings)
    if target.is_mock:
        log.warning(
            "NO UPSTREAM CONFIGURED: answering from the mock upstream at %s; set UPSTREAM_BASE_URL/OPENAI_API_KEY",
            target.base_url,
        )
    else:
        log.info("upstream: %s", target.name)
    upstream = Upstream(create_client(target, settings), target)
    prices = PriceBook(settings.prices_file or None)
    worker = Worker("llm_worker", settings)
    try:
        await worker.start()
        handler = LlmRequestHandler(
            upstream,
            prices,
            worker.fast_channel,
            worker.exchange,
            worker.topology,
            upstream_timeout=settings.upstream_timeout_seconds,
            cache_tool_calls=settings.cache_tool_calls,
        )
        await worker.consume(worker.topology.llm_request, handler, prefetch=settings.llm_concurrency)

        async def on_cancelled(body: bytes) -> None:
            handler.cancel(RequestCancelled.model_validate_json(body).request_id)

        await worker.subscribe(worker.topology.cancellations, on_cancelled)

        async def health_checks() -> dict[str, bool]:
            # Not the upstream: a health probe per second must not become an upstream call per second.
            return {}

        async def list_models() -> ModelsResult:
            return ModelsResult(data=await upstream.list_models())

        await worker.serve_control(health_checks, list_models)
        await worker.run_until_stopped()
    finally:
        await worker.close()
        await upstream.close()


if __name__ == "__main__":
    run(main)
