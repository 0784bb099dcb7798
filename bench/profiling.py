"""Where the time goes on the exact-hit path: py-spy on the gateway and the cache worker under load.

Two windows of the same c=64 exact-hit load: one records collapsed stacks (summarised here: the
functions with the most samples on top of the stack, and the project's own functions by inclusive
samples), the other a flame graph SVG per process for people. Needs py-spy (requirements/dev.txt)
and the right to ptrace the processes (root, or kernel.yama.ptrace_scope=0).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# Processes outside the stack's own that serve a hit: the broker and Redis (wrk comes and goes with
# each run and isn't counted; nor is whatever else shares the machine).
SHARED_PROCESSES = {"beam.smp": "rabbitmq", "redis-server": "redis"}
FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^:()]+)(?::\d+)?\)$")


def _py_spy() -> str | None:
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


def _short(frame: str) -> str:
    """`func (path/to/file.py:12)` -> `func (to/file.py)`: lines merged, paths trimmed after site-packages."""
    match = FRAME.match(frame)
    if not match:
        return frame
    file = match["file"]
    for marker in ("site-packages/", "/work/main/", "lib/python3"):
        if marker in file:
            file = file.split(marker, 1)[1]
    return f"{match['func']} ({file})"


def summarise(collapsed: Path, top: int = 12) -> dict[str, Any]:
    """Self and inclusive sample shares from py-spy's raw (collapsed) output."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_short(f) for f in stack.split(";")]
        total += n
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    if not total:
        return {"samples": 0}

    def share(counter: Counter[str], keep: Callable[[str], bool]) -> list[dict[str, Any]]:
        rows = [(f, n) for f, n in counter.most_common() if keep(f)][:top]
        return [{"frame": f, "share": round(n / total, 3)} for f, n in rows]

    project = ("services/", "shared/")
    return {
        "samples": total,
        "top_self": share(own, lambda f: True),
        "top_inclusive_project": share(inclusive, lambda f: any(p in f for p in project)),
        "top_inclusive_libraries": share(
            inclusive, lambda f: not any(p in f for p in project) and "asyncio" not in f and "<module>" not in f
        ),
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def shared_pids() -> dict[int, str]:
    """Pids of the broker and Redis on this machine (read from /proc, by command name)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                name = (entry / "comm").read_text().strip()
            except OSError:
                continue
            if name in SHARED_PROCESSES:
                found[int(entry.name)] = SHARED_PROCESSES[name]
    return found


def cpu_per_request(stack_pids: dict[str, int], load: Callable[[], Any]) -> dict[str, Any]:
    """Run `load()` and split the CPU it cost by process: ms of CPU per request, and cores busy."""
    shared_before = {pid: cpu_seconds(pid) for pid in shared_pids()}
    before = {name: cpu_seconds(pid) for name, pid in stack_pids.items()}
    started = time.perf_counter()
    result = load()
    wall = time.perf_counter() - started
    used = {name: cpu_seconds(pid) - before[name] for name, pid in stack_pids.items()}
    for pid, name in shared_pids().items():
        used[name] = used.get(name, 0.0) + cpu_seconds(pid) - shared_before.get(pid, 0.0)
    requests = max(getattr(result, "requests", 0), 1)
    return {
        "requests": requests,
        "rps": round(requests / wall, 1),
        "cpu_ms_per_request": {k: round(v * 1000 / requests, 3) for k, v in sorted(used.items(), key=lambda x: -x[1])},
        "cores_busy": {k: round(v / wall, 2) for k, v in sorted(used.items(), key=lambda x: -x[1])},
    }


def profile_exact_hits(
    pids: dict[str, int], load: Callable[[], Any], out_dir: Path, progress: Callable[[str], None]
) -> dict[str, Any]:
    """Profile each process in `pids` while `load()` runs (twice: collapsed stacks, then SVGs)."""
    py_spy = _py_spy()
    if py_spy is None:
        return {"skipped": "py-spy not installed (pip install py-spy)"}
    out_dir.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {}
    for fmt, suffix in (("raw", "txt"), ("flamegraph", "svg")):
        recorders = {
            name: subprocess.Popen(
                [
                    py_spy,
                    "record",
                    "--pid",
                    str(pid),
                    "--duration",
                    "10",
                    "--nonblocking",
                    "--format",
                    fmt,
                    "-o",
                    str(out_dir / f"profile-{name}.{suffix}"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for name, pid in pids.items()
        }
        loader = threading.Thread(target=load)
        loader.start()
        for name, recorder in recorders.items():
            _, err = recorder.communicate(timeout=60)
            if recorder.returncode != 0:
                summary[name] = {"skipped": f"py-spy failed: {err.strip()[-300:]}"}
        loader.join()
    for name in pids:
        path = out_dir / f"profile-{name}.txt"
        if name not in summary and path.exists():
            summary[name] = summarise(path) | {"svg": str(out_dir / f"profile-{name}.svg")}
            top = ", ".join(f"{r['frame']} {r['share']:.0%}" for r in summary[name]["top_self"][:4])
            progress(f"profile {name}: {top}")
    return summary
