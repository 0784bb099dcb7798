"""HTTP load for the benchmark: `wrk` (C, keep-alive, HdrHistogram percentiles) when it is installed,
else an httpx.AsyncClient fallback (slower: on two cores it measures less than the proxies can do).

Every run POSTs JSON bodies to one URL at a fixed number of connections for a fixed time, and
counts the value of one response header (`X-Cache` for ours) so a phase can prove it served hits.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import statistics
import subprocess
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx

LUA_SCRIPT = Path(__file__).resolve().parent / "wrk_chat.lua"
Mode = Literal["cycle", "unique"]


@dataclass
class LoadResult:
    """One load run: throughput, latency percentiles (ms) and what the responses said."""

    tool: str
    connections: int
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    errors: dict[str, int] = field(default_factory=dict)
    cache: dict[str, int] = field(default_factory=dict)
    status: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def failed(self) -> int:
        return sum(self.errors.values())


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def run_load(
    url: str,
    headers: dict[str, str],
    bodies: list[dict[str, Any]],
    *,
    mode: Mode,
    connections: int,
    seconds: float,
    hit_header: str = "x-cache",
    timeout: float = 30,
) -> LoadResult:
    """POST `bodies` to `url` with `connections` keep-alive connections for `seconds`.

    mode "cycle" sends the bodies round and round on every connection; "unique" sends each at most
    once (give enough bodies for the run, e.g. unique prompts for misses).
    """
    if have_wrk():
        return _run_wrk(url, headers, bodies, mode, connections, seconds, hit_header, timeout)
    return asyncio.run(_run_httpx(url, headers, bodies, mode, connections, seconds, hit_header, timeout))


def _run_wrk(
    url: str,
    headers: dict[str, str],
    bodies: list[dict[str, Any]],
    mode: Mode,
    connections: int,
    seconds: float,
    hit_header: str,
    timeout: float,
) -> LoadResult:
    threads = 1 if connections == 1 else 2  # two cores: wrk shares them with the system under test
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
        for body in bodies:
            f.write(json.dumps(body, separators=(",", ":")) + "\n")
        bodies_file = f.name
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", f"--timeout={timeout:g}s"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    command += ["-s", str(LUA_SCRIPT), url, "--", bodies_file, mode, str(threads), hit_header]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + timeout + 30)
    finally:
        Path(bodies_file).unlink(missing_ok=True)
    line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no result (exit {done.returncode}): {done.stdout[-2000:]} {done.stderr[-2000:]}")
    raw = json.loads(line.removeprefix("RESULT "))
    duration = raw["duration_us"] / 1e6
    return LoadResult(
        tool="wrk",
        connections=connections,
        requests=raw["requests"],
        seconds=duration,
        rps=raw["requests"] / duration if duration else 0.0,
        p50_ms=raw["p50"] / 1000,
        p90_ms=raw["p90"] / 1000,
        p99_ms=raw["p99"] / 1000,
        mean_ms=raw["mean"] / 1000,
        max_ms=raw["max"] / 1000,
        errors={k: v for k, v in raw["errors"].items() if v},
        cache=raw["cache"],
        status=raw["status"],
    )


async def _run_httpx(
    url: str,
    headers: dict[str, str],
    bodies: list[dict[str, Any]],
    mode: Mode,
    connections: int,
    seconds: float,
    hit_header: str,
    timeout: float,
) -> LoadResult:
    latencies: list[float] = []
    cache: Counter[str] = Counter()
    status: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    encoded = [json.dumps(b).encode() for b in bodies]
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    request_headers = {**headers, "Content-Type": "application/json"}
    started = time.perf_counter()
    deadline = started + seconds

    async with httpx.AsyncClient(headers=request_headers, timeout=timeout, limits=limits) as client:

        async def worker(index: int) -> None:
            position = index if mode == "unique" else 0
            step = connections if mode == "unique" else 1
            while time.perf_counter() < deadline:
                body = encoded[position % len(encoded)]
                position += step
                sent = time.perf_counter()
                try:
                    response = await client.post(url, content=body)
                except httpx.TimeoutException:
                    errors["timeout"] += 1
                    continue
                except httpx.HTTPError:
                    errors["connect"] += 1
                    continue
                latencies.append((time.perf_counter() - sent) * 1000)
                cache[response.headers.get(hit_header, "none")] += 1
                status[str(response.status_code)] += 1
                if response.status_code >= 400:
                    errors["status"] += 1

        await asyncio.gather(*(worker(i) for i in range(connections)))
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies) or [0.0]

    def pct(q: float) -> float:
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    return LoadResult(
        tool="httpx",
        connections=connections,
        requests=len(latencies),
        seconds=elapsed,
        rps=len(latencies) / elapsed,
        p50_ms=pct(0.5),
        p90_ms=pct(0.9),
        p99_ms=pct(0.99),
        mean_ms=statistics.fmean(ordered),
        max_ms=ordered[-1],
        errors=dict(errors),
        cache=dict(cache),
        status=dict(status),
    )
