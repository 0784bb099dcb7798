"""`make bench`: cache hit latency and throughput over HTTP, ours side by side with LiteLLM and GPTCache.

One run, one machine, one mock upstream (MOCK_LATENCY_MS, 300 ms), one load generator (wrk, else
httpx). For each system: exact hits at concurrency 1 (p50/p90/p99) and 64 (throughput), semantic
hits the same (ours, GPTCache), and the miss overhead (latency minus the mock's own, measured
directly). Workloads run interleaved across the systems, so a noisy neighbour hits them alike;
ratios (ours / theirs) are reported beside the absolute numbers. Then, unless `--quick`: one
against two replicas of every service, a py-spy profile of the exact-hit path, and semantic
lookup latency at 10k and 100k stored vectors (bench/scale.py).

    .venv/bin/python -m bench.run [--quick] [--no-rivals] [--scale-sizes 10000,100000,1000000]

Results: bench-results/results.json and bench-results/results.png (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench import profiling, report, scale
from bench.loadgen import LoadResult, have_wrk, run_load
from bench.questions import distinct_questions, fresh_question
from bench.report import EXACT_MODE
from bench.rivals import GPTCache, LiteLLM, Rival, Unavailable
from scripts.stack import ROOT
from tests.integration.stack import SERVICES, Stack, build_stack, dependencies, free_port

QUESTION = "What is the boiling point of water at sea level?"
PARAPHRASE = "What is water's boiling point at sea level?"
RESULTS = ROOT / "bench-results"
STARTED = time.monotonic()


def progress(message: str) -> None:
    print(f"[{time.monotonic() - STARTED:6.1f}s] {message}", flush=True)


@dataclass(frozen=True)
class Durations:
    """Seconds per load run (misses: enough for ~130 requests at 300 ms)."""

    c1: float
    c64: float
    miss: float

    @classmethod
    def pick(cls, quick: bool) -> Durations:
        return cls(c1=3, c64=4, miss=6) if quick else cls(c1=10, c64=15, miss=40)


@dataclass
class Target:
    """A system under load: ours or a rival, with its URL, headers and results so far."""

    name: str
    url: str
    headers: dict[str, str]
    hit_header: str
    semantic_skip: str | None = None
    results: dict[str, Any] = field(default_factory=dict)


class Workload:
    """The request bodies, in a partition of this run's own (a system prompt no other run uses)."""

    def __init__(self) -> None:
        self.system = {"role": "system", "content": f"You are a concise assistant. Run {uuid.uuid4().hex[:8]}."}
        self._questions: list[str] | None = None

    def body(self, text: str) -> dict[str, Any]:
        return {"model": "gpt-4o-mini", "messages": [self.system, {"role": "user", "content": text}]}

    def exact(self) -> list[dict[str, Any]]:
        return [self.body(QUESTION)]

    def semantic(self) -> list[dict[str, Any]]:
        # Trailing spaces: a new exact key, the same prompt once stripped for embedding. A semantic
        # hit stores no exact alias, so the keys may repeat after 500.
        return [self.body(PARAPHRASE + " " * (i + 1)) for i in range(500)]

    def unique(self, count: int) -> list[dict[str, Any]]:
        """Bodies never sent before in this run, each a distinct real question (so that none is a hit)."""
        if self._questions is None:
            self._questions = distinct_questions()
        taken = [self._questions.pop() for _ in range(min(count, len(self._questions)))]
        return [self.body(q) for q in taken] + [self.body(fresh_question()) for _ in range(count - len(taken))]


def mock_calls(stack: Stack) -> int:
    return httpx.get(f"{stack.mock_url}/_mock/stats", timeout=10).json()["chat_calls"]


def measure(
    stack: Stack, target: Target, key: str, bodies: list[dict[str, Any]], mode: str, connections: int, seconds: float
) -> LoadResult:
    """One load run against a target, recording how many upstream calls it made meanwhile."""
    progress(f"{target.name:<9} {key:<13} c={connections:<3} {seconds:.0f}s ...")
    before = mock_calls(stack)
    result = run_load(
        target.url,
        target.headers,
        bodies,
        mode=mode,  # type: ignore[arg-type]
        connections=connections,
        seconds=seconds,
        hit_header=target.hit_header,
    )
    upstream = mock_calls(stack) - before
    entry = result.as_dict() | {"upstream_calls": upstream}
    target.results[key] = entry
    progress(
        f"{target.name:<9} {key:<13} c={connections:<3} {result.requests:>6} req {result.rps:>8.0f}/s "
        f"p50 {result.p50_ms:7.2f} p90 {result.p90_ms:7.2f} p99 {result.p99_ms:7.2f} ms  "
        f"upstream calls {upstream}  errors {result.failed}  {report.cache_summary(result.cache)}"
    )
    return result


def settle(target: Target, workload: Workload) -> None:
    """Wait until the requests a load run left in flight are served: one more request (a warmed
    hit) queues behind them. A server that answers one request at a time (GPTCache's) is still
    working through up to `connections` of them when the load generator stops, and would else eat
    into the next run's seconds."""
    started = time.monotonic()
    with httpx.Client(headers=target.headers, timeout=600) as client:
        client.post(target.url, json=workload.body(QUESTION)).raise_for_status()
    if time.monotonic() - started > 1:
        progress(f"{target.name:<9} settled after {time.monotonic() - started:.0f}s (requests left in flight)")


def warm(target: Target, workload: Workload, semantic: bool) -> None:
    """Store the question's answer, then wait until it is served from the cache (storing is asynchronous)."""
    with httpx.Client(headers=target.headers, timeout=60) as client:
        client.post(target.url, json=workload.body(QUESTION)).raise_for_status()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            started = time.perf_counter()
            client.post(target.url, json=workload.body(QUESTION)).raise_for_status()
            if (time.perf_counter() - started) < 0.15:  # well under the mock's 300 ms: a hit
                break
            time.sleep(0.2)
        else:
            raise RuntimeError(f"{target.name}: the warmed question is still not a hit after 20 s")
        if semantic:
            response = client.post(target.url, json=workload.body(PARAPHRASE + " "))
            response.raise_for_status()
            if target.hit_header == "x-cache" and response.headers.get("x-cache-match") != "semantic":
                raise RuntimeError(f"{target.name}: the paraphrase is no semantic hit: {dict(response.headers)}")


def start_ours(tmp: Path, urls: dict[str, str], mock_latency_ms: int) -> Stack:
    stack = build_stack(urls, tmp)
    stack.env["MOCK_LATENCY_MS"] = str(mock_latency_ms)
    stack.env["LOG_LEVEL"] = "WARNING"
    stack.env["REQUEST_TIMEOUT_SECONDS"] = "60"
    stack.env["TENANT_MAX_IN_FLIGHT"] = "0"  # one tenant's 64 connections: throughput, not fairness, is measured
    for name in SERVICES:
        stack.start(name)
    stack.wait_ready(timeout=180)
    return stack


def start_rivals(names: list[str], stack: Stack, log_dir: Path) -> tuple[list[Rival], dict[str, str]]:
    """Install and start each rival; the ones that can't run come back as skip reasons."""
    rivals: list[Rival] = []
    skipped: dict[str, str] = {}
    for name in names:
        rival: Rival
        if name == "litellm":
            rival = LiteLLM(name=name, log_dir=log_dir, mock_url=stack.mock_url, redis_url=stack.env["REDIS_URL"])
        else:
            rival = GPTCache(name=name, log_dir=log_dir, mock_url=stack.mock_url)
        progress(f"{name}: installing / starting")
        try:
            rival.prepare()
            rival.start()
        except (Unavailable, subprocess.SubprocessError, OSError) as exc:
            rival.stop()
            skipped[name] = str(exc)
            progress(f"{name}: SKIPPED: {exc}")
            continue
        progress(f"{name}: ready on port {rival.port}")
        rivals.append(rival)
    return rivals, skipped


def start_replicas(stack: Stack) -> list[str]:
    """A second process of every service but the mock; returns the second gateway's base URL(s)."""
    gateways = []
    for name in SERVICES:
        if name == "mock_upstream":
            continue
        env = dict(stack.env)
        if name in stack.metrics_ports:
            env["METRICS_PORT"] = str(free_port())
        if name == "gateway":
            port = free_port()
            env["GATEWAY_PORT"] = str(port)
            gateways.append(f"http://127.0.0.1:{port}")
        with open(stack.log_dir / f"{name}-2.log", "ab") as log:
            stack.processes[f"{name}-2"] = subprocess.Popen(
                [sys.executable, "-m", f"services.{name}.main"], cwd=ROOT, env=env, stdout=log, stderr=log
            )
    deadline = time.monotonic() + 180
    for base in gateways:
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/status", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
    time.sleep(3)  # the new workers' consumers attach to the queues
    return gateways


def split_load(
    stack: Stack, target: Target, urls: list[str], key: str, bodies: list[dict[str, Any]], seconds: float
) -> None:
    """64 connections split evenly over several gateways, run at once; throughput summed."""
    progress(f"{target.name:<9} {key:<13} c=64 over {len(urls)} gateways {seconds:.0f}s ...")
    before = mock_calls(stack)
    results: list[LoadResult] = []

    def one(url: str) -> None:
        results.append(
            run_load(
                url,
                target.headers,
                bodies,
                mode="cycle",
                connections=64 // len(urls),
                seconds=seconds,
                hit_header="x-cache",
            )
        )

    threads = [threading.Thread(target=one, args=(u,)) for u in urls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rps = sum(r.rps for r in results)
    entry = {
        "rps": rps,
        "requests": sum(r.requests for r in results),
        "p50_ms": max(r.p50_ms for r in results),
        "p99_ms": max(r.p99_ms for r in results),
        "errors": sum(r.failed for r in results),
        "upstream_calls": mock_calls(stack) - before,
        "cache": [r.cache for r in results],
    }
    target.results[key] = entry
    progress(f"{target.name:<9} {key:<13} {rps:>8.0f}/s p50 {entry['p50_ms']:.2f} p99 {entry['p99_ms']:.2f} ms")


def run(args: argparse.Namespace) -> dict[str, Any]:
    durations = Durations.pick(args.quick)
    workload = Workload()
    out: dict[str, Any] = {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_at_start": os.getloadavg(),
            "load_generator": "wrk" if have_wrk() else "httpx (install wrk for sharper numbers)",
        },
        "config": {
            "quick": args.quick,
            "mock_latency_ms": args.mock_latency_ms,
            "seconds": vars(durations),
        },
    }
    if not have_wrk():
        progress("wrk not found (Debian: apt-get install wrk): using the httpx load generator")
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp_name, dependencies(Path(tmp_name)) as urls:
        tmp = Path(tmp_name)
        progress(f"starting our stack (mock upstream at {args.mock_latency_ms} ms)")
        stack = start_ours(tmp, urls, args.mock_latency_ms)
        rivals: list[Rival] = []
        try:
            ours = Target("ours", f"{stack.base_url}/v1/chat/completions", stack.auth, "x-cache")
            # The same system with the semantic layer off for the request: what a miss costs an exact-only
            # cache (LiteLLM's is one), without embedding the prompt and searching the vectors.
            ours_exact = Target(EXACT_MODE, ours.url, {**stack.auth, "X-Cache-Mode": "exact"}, "x-cache")
            rivals, skipped = start_rivals(args.rivals, stack, tmp)
            out["skipped"] = skipped
            targets = [ours] + [Target(r.name, r.url, r.headers, r.hit_header, r.semantic) for r in rivals]
            for target in targets:
                progress(f"{target.name}: warming")
                warm(target, workload, semantic=target.semantic_skip is None)
            mock = Target("mock", f"{stack.mock_url}/v1/chat/completions", {}, "none")
            misses_needed = int(durations.miss / (args.mock_latency_ms / 1000)) + 50

            # Interleaved: each workload on every system before the next workload.
            phases: list[tuple[str, Callable[[], list[dict[str, Any]]], str, int, float, bool]] = [
                ("exact_c1", workload.exact, "cycle", 1, durations.c1, False),
                ("exact_c64", workload.exact, "cycle", 64, durations.c64, False),
                ("semantic_c1", workload.semantic, "cycle", 1, durations.c1, True),
                ("semantic_c64", workload.semantic, "cycle", 64, durations.c64, True),
                ("miss_c1", lambda: workload.unique(misses_needed), "unique", 1, durations.miss, False),
            ]
            for key, bodies, mode, connections, seconds, semantic in phases:
                for target in targets:
                    if semantic and target.semantic_skip:
                        target.results[key] = {"skipped": target.semantic_skip}
                        continue
                    measure(stack, target, key, bodies(), mode, connections, seconds)
                    settle(target, workload)
                if key == "miss_c1":
                    measure(stack, ours_exact, key, bodies(), mode, connections, seconds)
                    measure(stack, mock, "direct_c1", bodies(), mode, connections, seconds)
            out["mock_direct"] = mock.results["direct_c1"]
            out["targets"] = {t.name: t.results for t in [*targets, ours_exact]} | {
                n: {"skipped": r} for n, r in skipped.items()
            }

            for rival in rivals:  # free the cores for what follows
                rival.stop()
            if not args.no_profile:
                progress("CPU per exact hit by process (c=64)")
                out["cpu_per_exact_hit"] = profiling.cpu_per_request(
                    {name: p.pid for name, p in stack.processes.items()},
                    lambda: run_load(
                        ours.url, ours.headers, workload.exact(), mode="cycle", connections=64, seconds=durations.c64
                    ),
                )
                progress(f"CPU ms per exact hit: {out['cpu_per_exact_hit']['cpu_ms_per_request']}")
            if not args.quick and not args.no_profile:
                progress("profiling the exact-hit path (py-spy, gateway and cache worker, c=64)")
                out["profile"] = profiling.profile_exact_hits(
                    {"gateway": stack.processes["gateway"].pid, "cache_worker": stack.processes["cache_worker"].pid},
                    lambda: run_load(
                        ours.url, ours.headers, workload.exact(), mode="cycle", connections=64, seconds=12
                    ),
                    RESULTS,
                    progress,
                )
            if not args.quick and not args.no_replicas:
                progress("replicas: starting a second process of every service")
                replica = Target("ours_x2", ours.url, ours.headers, "x-cache")
                gateways = [stack.base_url, *start_replicas(stack)]
                chat_urls = [f"{g}/v1/chat/completions" for g in gateways]
                split_load(stack, replica, chat_urls, "exact_c64", workload.exact(), durations.c64)
                split_load(stack, replica, chat_urls, "semantic_c64", workload.semantic(), durations.c64)
                out["replicas"] = {"one": {k: ours.results[k] for k in ("exact_c64", "semantic_c64")}} | {
                    "two": replica.results
                }
        finally:
            for rival in rivals:
                rival.stop()
                rival.clean_up()
            stack.stop_all()
            stack.clean_up()
    sizes = [] if args.quick else [int(x) for x in args.scale_sizes.split(",") if x]
    if sizes:
        out["scale"] = scale.run_sizes(sizes, scale.options([]), progress)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a short smoke: a few seconds per run, no extras")
    parser.add_argument("--mock-latency-ms", type=int, default=300)
    parser.add_argument("--rivals", default="litellm,gptcache", help="comma-separated; empty for none")
    parser.add_argument("--no-rivals", action="store_true")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--no-replicas", action="store_true")
    parser.add_argument("--scale-sizes", default="10000,100000", help="stored vectors per scale run; '' skips")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    args.rivals = [] if args.no_rivals else [x for x in args.rivals.split(",") if x]
    random.seed(1)
    results = run(args)
    results["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    results["load_average_at_end"] = os.getloadavg()
    report.add_summary(results)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    report.chart(results, args.out / "results.png")
    print()
    print(report.table(results))
    print(f"\nwritten: {args.out / 'results.json'}, {args.out / 'results.png'}")


if __name__ == "__main__":
    main()
