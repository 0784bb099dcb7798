"""The embedder service: load the model, then answer embed RPCs from the broker until stopped.

Run with `python -m services.embedder.main`.
"""

from __future__ import annotations

import logging

from services.embedder.batching import embed_batcher
from services.embedder.handlers import EmbedHandler
from services.embedder.providers import make_provider
from services.embedder.settings import Settings
from shared.logs import setup_logging
from shared.tracing import setup_tracing
from shared.worker import Worker, run

log = logging.getLogger(__name__)


async def main() -> None:
    """Wire the provider, the batcher and the worker together; shut down in reverse order."""
    settings = Settings()
    setup_logging("embedder", settings.log_level)
    setup_tracing("embedder", settings)
    provider = make_provider(settings)
    batcher = embed_batcher(provider, max_size=settings.batch_max_size)
    worker = Worker("embedder", settings)

    async def health_checks() -> dict[str, bool]:
        return {"model": provider.loaded}

    try:
        # Load the model before consuming: a request must never wait for (or time out on) the load.
        await provider.start()
        await worker.start()
        handler = EmbedHandler(batcher, provider, worker.fast_channel)
        await worker.consume(worker.topology.embed_rpc, handler, prefetch=settings.embedder_prefetch)
        await worker.serve_control(health_checks)
        await worker.run_until_stopped()
    finally:
        # Worker.close drains in-flight requests first, so the batcher and the model are still there for them.
        await worker.close()
        await batcher.close()
        await provider.close()


if __name__ == "__main__":
    run(main)
