"""Tenants service process: wiring, startup and shutdown.

Owns the `tenants` and `api_keys` tables, answers tenant and key requests (admin API, CLI, the
gateways' key resolution) on its RPC queue, and announces revocations on a fanout exchange.
Run with `python -m services.tenants.main`.
"""

from __future__ import annotations

import logging

from services.tenants.handlers import TenantsHandlers
from services.tenants.registry import Registry
from services.tenants.repository import ensure_schema
from services.tenants.settings import Settings
from shared.db import open_service_pool, ping
from shared.logs import setup_logging
from shared.tracing import setup_tracing
from shared.worker import Worker, run

SERVICE = "tenants"

log = logging.getLogger(__name__)


async def main() -> None:
    """Start the tenants service and serve until SIGTERM/SIGINT, then drain and close."""
    settings = Settings()
    setup_logging(SERVICE, settings.log_level)
    setup_tracing(SERVICE, settings)
    pool = await open_service_pool(settings, SERVICE, vector=False)
    try:
        await ensure_schema(pool)
        registry = Registry(pool)
        dev_key = settings.dev_api_key.get_secret_value()
        if dev_key:
            await registry.ensure_dev_key(dev_key)
        worker = Worker(SERVICE, settings)

        async def health_checks() -> dict[str, bool]:
            return {"postgres": await ping(pool)}

        try:
            await worker.start()
            # On the confirming channel: a revocation notice is only "sent" once the broker has it.
            revocations = await worker.events_channel.get_exchange(worker.topology.key_revocations, ensure=False)
            handlers = TenantsHandlers(registry, worker.fast_channel, revocations)
            await worker.consume(worker.topology.tenants_rpc, handlers.on_request, prefetch=settings.tenants_prefetch)
            await worker.serve_control(health_checks)
            await worker.run_until_stopped()
        finally:
            await worker.close()
    finally:
        await pool.close()
        log.info("tenants service shut down")


if __name__ == "__main__":
    run(main)
