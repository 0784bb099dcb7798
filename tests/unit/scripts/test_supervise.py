"""make run's supervisor: a service that exits is restarted, a crash loop stops everything, stop stops all."""

from __future__ import annotations

import io
import sys
import threading
import time
from pathlib import Path

import pytest

from scripts import supervise
from scripts.supervise import Supervisor, read_procfile


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(supervise, "FIRST_BACKOFF", 0.05)


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_a_service_that_exits_is_restarted_and_the_others_keep_running(tmp_path: Path) -> None:
    marker = tmp_path / "crashed-once"
    flaky = (
        f"import pathlib,sys,time; p=pathlib.Path({str(marker)!r})\n"
        "if not p.exists(): p.touch(); sys.exit(3)\n"
        "print('up', flush=True); time.sleep(60)"
    )
    out = io.StringIO()
    supervisor = Supervisor(
        {"flaky": python(flaky), "steady": python("import time; print('steady', flush=True); time.sleep(60)")},
        env={},
        cwd=tmp_path,
        out=out,
    )
    threading.Timer(2.0, supervisor.stop).start()
    started = time.monotonic()
    assert supervisor.run(poll_seconds=0.02) == 0
    assert time.monotonic() - started < 10  # stopped the sleeping services at once
    log = out.getvalue()
    assert "flaky exited (code 3); restarting it in 0.05 s" in log
    assert log.count("flaky started") == 2 and log.count("steady started") == 1
    assert "| up" in log and "steady     | steady" in log  # lines prefixed with the service's name
    assert "all services stopped" in log


def test_a_crash_loop_stops_everything(tmp_path: Path) -> None:
    out = io.StringIO()
    supervisor = Supervisor(
        {"broken": python("raise SystemExit(1)"), "steady": python("import time; time.sleep(60)")},
        env={},
        cwd=tmp_path,
        out=out,
    )
    assert supervisor.run(poll_seconds=0.02) == 1
    assert supervisor.crash_looping == "broken"
    assert "broken exited 5 times within 60 s: stopping everything" in out.getvalue()


def test_the_procfile_is_read_in_order(tmp_path: Path) -> None:
    procfile = tmp_path / "Procfile"
    procfile.write_text("# services\nweb: python -m app --port 8000\n\nworker: python -m worker\n")
    assert read_procfile(procfile) == {
        "web": ["python", "-m", "app", "--port", "8000"],
        "worker": ["python", "-m", "worker"],
    }
