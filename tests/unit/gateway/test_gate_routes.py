"""The request gate in front of the real app's routes: what needs a key is authenticated before its body is
read (a body declared too large is refused before even that), and what needs none is never asked for one."""

from __future__ import annotations

from types import ModuleType, SimpleNamespace

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from services.gateway import routes as routes_package
from services.gateway.auth import Principal
from services.gateway.errors import ApiError
from services.gateway.gate import needs_key
from services.gateway.main import create_app
from services.gateway.settings import Settings

BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class CountingAuth:
    """Knows no key: every look-up is a 401, counted."""

    def __init__(self) -> None:
        self.calls = 0

    async def authenticate(self, token: str | None, address: str | None = None) -> Principal:
        self.calls += 1
        raise ApiError(401, "Invalid API key (unknown or revoked).", code="invalid_api_key")


@pytest.fixture
def gated() -> tuple[TestClient, CountingAuth]:
    settings = Settings(max_body_bytes=1000)
    app = create_app(settings)  # no lifespan: the state below stands in for the broker clients
    auth = CountingAuth()
    worker = SimpleNamespace(ready=_ready)
    app.state.gateway = SimpleNamespace(settings=settings, auth=auth, worker=worker)
    return TestClient(app, raise_server_exceptions=False), auth


async def _ready() -> bool:
    return True


def test_every_route_that_takes_a_body_is_behind_the_key_check() -> None:
    modules = [module for module in vars(routes_package).values() if isinstance(module, ModuleType)]
    routes = [route for module in modules for route in module.router.routes if isinstance(route, APIRoute)]
    with_bodies = [route.path for route in routes if route.methods & BODY_METHODS]
    assert with_bodies and all(needs_key(path) for path in with_bodies), with_bodies


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/dashboard/", "/dashboard/assets/x.js"])
def test_paths_that_need_no_key_are_not_asked_for_one_even_with_a_body(
    gated: tuple[TestClient, CountingAuth], path: str
) -> None:
    client, auth = gated
    response = client.request("GET", path, content=b'{"a": 1}')
    assert response.status_code not in (401, 403, 429), response.text
    assert auth.calls == 0


def test_a_body_declared_too_large_is_refused_before_any_key_look_up(gated: tuple[TestClient, CountingAuth]) -> None:
    client, auth = gated
    response = client.post("/v1/chat/completions", content=b"x" * 5000, headers={"Authorization": "Bearer lcp-unknown"})
    assert response.status_code == 413, response.text
    assert auth.calls == 0


def test_a_body_within_the_limit_waits_for_the_key(gated: tuple[TestClient, CountingAuth]) -> None:
    client, auth = gated
    response = client.post("/v1/chat/completions", content=b"[" * 500, headers={"Authorization": "Bearer lcp-x"})
    assert response.status_code == 401 and auth.calls == 1  # the key first: the body was never looked at
