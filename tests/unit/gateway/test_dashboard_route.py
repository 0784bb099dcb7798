"""The dashboard's files at the edge: a path the file system can't name is not found, never a 500."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.gateway.routes.dashboard import router


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html><title>app</title>")
    (tmp_path / "assets" / "index-abc.js").write_text("console.log(1)")
    app = FastAPI()
    app.include_router(router)
    app.state.gateway = SimpleNamespace(settings=SimpleNamespace(dashboard_path=lambda: tmp_path))
    return TestClient(app, raise_server_exceptions=False)


def test_files_and_app_routes_are_served(client: TestClient) -> None:
    assert client.get("/dashboard/assets/index-abc.js").text == "console.log(1)"
    assert "<title>app</title>" in client.get("/dashboard/requests").text
    assert client.get("/dashboard/assets/nope.js").status_code == 404


@pytest.mark.parametrize(
    "path", ["/dashboard/%00", "/dashboard/assets/%00x.js", "/dashboard/a%00b/c.txt", "/dashboard/assets/" + "a" * 5000]
)
def test_a_name_no_file_system_takes_is_not_found(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404, response.text
    assert response.headers["x-content-type-options"] == "nosniff"
