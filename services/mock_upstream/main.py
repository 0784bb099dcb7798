"""Run the mock OpenAI upstream: `python -m services.mock_upstream.main` (MOCK_HOST, MOCK_PORT, MOCK_LATENCY_MS)."""

from __future__ import annotations

import logging

import uvicorn

from services.mock_upstream.app import create_app
from services.mock_upstream.settings import Settings
from shared.logs import setup_logging

log = logging.getLogger(__name__)


def main() -> None:
    """Serve the mock upstream until interrupted (uvicorn handles SIGINT/SIGTERM)."""
    settings = Settings()
    setup_logging("mock_upstream", settings.log_level)
    log.info(
        "mock upstream on http://%s:%d/v1 (latency %gms, chunk delay %gms)",
        settings.host,
        settings.port,
        settings.latency_ms,
        settings.chunk_delay_ms,
    )
    # log_config=None: keep the one-line format setup_logging installed.
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        log_level=settings.log_level.lower(),
        access_log=False,
        ws="none",
        lifespan="off",
    )


if __name__ == "__main__":
    main()
