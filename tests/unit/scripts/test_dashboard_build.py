"""The dashboard's build step (scripts/dashboard.py): the Node.js versions the lockfile's tools run on, and
what `make run` and `make test` do when the build can't be made."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from scripts import dashboard
from services.gateway.routes.dashboard import NOT_BUILT


class Stop(Exception):
    """The build got past the Node.js check."""


@pytest.fixture
def stale(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dashboard, "is_current", lambda: False)
    monkeypatch.setattr(dashboard.shutil, "which", lambda name: f"/usr/bin/{name}")

    def npm(command: list[str]) -> None:
        raise Stop(command)

    monkeypatch.setattr(dashboard, "run", npm)


def with_node(monkeypatch: pytest.MonkeyPatch, version: str) -> None:
    def fake_run(command: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        assert command[1:] == ["--version"]
        return subprocess.CompletedProcess(command, 0, stdout=f"{version}\n", stderr="")

    monkeypatch.setattr(dashboard.subprocess, "run", fake_run)


# vite 7 and @vitejs/plugin-react in the lockfile: "engines": {"node": "^20.19.0 || >=22.12.0"}
@pytest.mark.parametrize("version", ["v18.20.4", "v20.18.1", "v21.7.3", "v22.11.0"])
def test_a_node_the_lockfile_refuses_says_how_to_get_one(
    stale: None, monkeypatch: pytest.MonkeyPatch, version: str
) -> None:
    with_node(monkeypatch, version)
    with pytest.raises(dashboard.NodeMissing) as missing:
        dashboard.build()
    assert version.lstrip("v") in str(missing.value) and "20.19" in str(missing.value)


@pytest.mark.parametrize("version", ["v20.19.0", "v20.20.2", "v22.12.0", "v24.1.0"])
def test_a_node_the_lockfile_accepts_builds(stale: None, monkeypatch: pytest.MonkeyPatch, version: str) -> None:
    with_node(monkeypatch, version)
    with pytest.raises(Stop):
        dashboard.build()


def test_the_hint_names_a_node_that_debian_12_does_not_have() -> None:
    for text in (dashboard.HOW_TO_GET_NODE, NOT_BUILT):
        assert "apt-get install nodejs npm" not in text  # Debian 12's nodejs is 18
        assert "NodeSource" in text and "Debian 13" in text and "20.19" in text


def run_main(monkeypatch: pytest.MonkeyPatch, failure: Exception, *args: str) -> int:
    def build() -> bool:
        raise failure

    monkeypatch.setattr(dashboard, "build", build)
    monkeypatch.setattr(sys, "argv", ["dashboard", *args])
    try:
        dashboard.main()
    except SystemExit as exit:
        return int(exit.code or 0)
    return 0


def test_make_run_starts_the_proxy_whatever_went_wrong(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_main(monkeypatch, dashboard.NodeMissing("no node"), "--optional") == 0
    assert run_main(monkeypatch, dashboard.CannotBuild("`npm ci` failed: ETIMEDOUT"), "--optional") == 0
    warning = capsys.readouterr().err
    assert "ETIMEDOUT" in warning and "without the dashboard" in warning


def test_make_test_fails_on_a_broken_build_and_skips_without_node(monkeypatch: pytest.MonkeyPatch) -> None:
    assert run_main(monkeypatch, dashboard.NodeMissing("no node"), "--if-node") == 0
    assert run_main(monkeypatch, dashboard.CannotBuild("`npm run build` failed"), "--if-node") == 1
    assert run_main(monkeypatch, dashboard.NodeMissing("no node")) == 1
