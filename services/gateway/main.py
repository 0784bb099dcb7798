"""Gateway: the FastAPI app (routes, error format, startup and shutdown of its broker clients).

Run with `python -m services.gateway.main` (uvicorn with uvloop and httptools).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI

from services.gateway import errors
from services.gateway.auth import KeyAuthenticator, start_revocation_listener
from services.gateway.gate import RequestGate
from services.gateway.limits import InFlightLimit, Limiter
from services.gateway.memo import Memo
from services.gateway.routes import (
    admin_cache,
    admin_keys,
    cache,
    chat,
    dashboard,
    embeddings,
    messages,
    ops,
    session,
    stats,
)
from services.gateway.settings import Settings
from services.gateway.state import GatewayState
from shared.logs import setup_logging
from shared.tracing import setup_tracing
from shared.worker import Worker, freeze_startup_objects

log = logging.getLogger("gateway")


def create_app(settings: Settings | None = None) -> FastAPI:
    """The gateway app; its broker connection opens on startup and closes on shutdown."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        worker = Worker("gateway", settings)
        await worker.start()
        auth = KeyAuthenticator(
            worker.rpc,
            worker.topology,
            required=settings.auth_required,
            default_tenant=settings.default_tenant,
            cache_ttl_seconds=settings.key_cache_ttl_seconds,
            cache_max_entries=settings.key_cache_max_entries,
            timeout_seconds=settings.control_timeout_seconds,
            stale_if_error_seconds=settings.key_stale_if_error_seconds,
            cache_max_unknown=settings.key_cache_max_unknown,
            failures_per_minute=settings.auth_failures_per_minute,
        )
        limiter = Limiter.from_url(
            settings.redis_url.get_secret_value(),
            settings.redis_prefix,
            timeout_seconds=settings.limits_timeout_seconds,
        )
        state = GatewayState(
            settings=settings,
            worker=worker,
            auth=auth,
            limiter=limiter,
            status=Memo(settings.status_cache_seconds),
            models=Memo(settings.models_cache_seconds),
            in_flight=InFlightLimit(settings.tenant_max_in_flight),
        )
        app.state.gateway = state
        await start_revocation_listener(state)
        freeze_startup_objects()
        log.info("gateway listening on http://%s:%d/v1", settings.gateway_host, settings.gateway_port)
        try:
            yield
        finally:
            await worker.close()
            await limiter.close()

    app = FastAPI(title="LLM Cache Proxy", version="0.1.0", lifespan=lifespan)
    errors.install(app)
    # Before any route reads a body: the caller's key, then the body's size and shape. The proxied routes are
    # called by the gate itself (still FastAPI routes too: the OpenAPI document, a request without a body).
    direct = {
        ("POST", "/v1/chat/completions"): chat.chat_completions,
        ("POST", "/api/v1/chat/completions"): chat.chat_completions,
        ("POST", "/v1/messages"): messages.messages,
        ("POST", "/api/v1/messages"): messages.messages,
        ("POST", "/v1/embeddings"): embeddings.embeddings,
    }
    app.add_middleware(RequestGate, direct=direct)
    app.include_router(chat.router)
    app.include_router(messages.router)
    app.include_router(embeddings.router)
    app.include_router(ops.router)
    app.include_router(admin_cache.router)
    app.include_router(stats.router)
    app.include_router(admin_keys.router)
    app.include_router(cache.router)
    app.include_router(session.router)
    app.include_router(dashboard.router)
    if settings.otel_exporter_otlp_endpoint:
        # The server span of each request: the root of its trace (probes and scrapes are not traced).
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(app, excluded_urls="/metrics,/healthz,/readyz,/livez")
    return app


def main() -> None:
    settings = Settings()
    setup_logging("gateway", settings.log_level)
    setup_tracing("gateway", settings)
    uvicorn.run(
        create_app(settings),
        host=settings.gateway_host,
        port=settings.gateway_port,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
        proxy_headers=False,  # X-Forwarded-For is read by the gateway, from FORWARDED_ALLOW_IPS only (addresses.py)
    )


if __name__ == "__main__":
    main()
