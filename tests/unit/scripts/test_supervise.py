"""make run's supervisor: a service that exits is restarted, a crash loop stops everything, stop stops all."""

from __future__ import annotations

import io
import os
import signal
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
    assert supervisor.run(poll_seconds=0.02) == 0
    # Stopped at once by SIGTERM, not waited for (each sleeps a minute, then would exit 0).
    assert [service.process.returncode for service in supervisor._services if service.process] == [-signal.SIGTERM] * 2
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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_stopping_reaches_a_services_own_children(tmp_path: Path) -> None:
    # The embedder's first start runs an export in a child process: stopping must not orphan it.
    pid_file = tmp_path / "child.pid"
    spawner = python(
        "import pathlib,subprocess,sys,time; c=subprocess.Popen([sys.executable,'-c','import time; time.sleep(60)']);"
        f" pathlib.Path({str(pid_file)!r}).write_text(str(c.pid)); time.sleep(60)"
    )
    supervisor = Supervisor({"parent": spawner}, env={}, cwd=tmp_path, out=io.StringIO())
    threading.Timer(1.5, supervisor.stop).start()
    supervisor.run(poll_seconds=0.02)
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


def test_a_second_stop_kills_a_service_that_ignores_sigterm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(supervise, "STOP_GRACE", 3600.0)  # only the second stop can kill it within the test
    stubborn = python(
        "import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(600)"
    )
    supervisor = Supervisor({"stubborn": stubborn}, env={}, cwd=tmp_path, out=io.StringIO())
    threading.Timer(1.0, supervisor.stop).start()
    threading.Timer(1.5, supervisor.stop).start()
    supervisor.run(poll_seconds=0.02)
    (service,) = supervisor._services
    assert service.process is not None and service.process.returncode == -signal.SIGKILL


def test_services_are_stopped_whatever_ends_the_supervisor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    supervisor = Supervisor({"steady": python("import time; time.sleep(60)")}, env={}, cwd=tmp_path, out=io.StringIO())

    def broken(_: object) -> None:
        raise RuntimeError("a bug in the supervisor")

    monkeypatch.setattr(supervisor, "_watch", broken)
    with pytest.raises(RuntimeError):
        supervisor.run(poll_seconds=0.02)
    (service,) = supervisor._services
    assert service.process is not None and service.process.poll() is not None
