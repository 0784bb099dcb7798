"""Soak: a bounded load at a steady rate on loopback, mixing hits and misses, for several minutes.

Starts the whole system the way the integration tests do (its own broker prefix, Redis prefix
and embedded PostgreSQL), sends `--rate` requests per second for `--seconds`, then reports:
errors by status, requests answered vs usage rows recorded, and each service's resident memory
at the start, at every fifth of the run, and at the end: a leak keeps growing in the later
fifths, an allocator warming up levels off.
    .venv/bin/python -m bench.soak --seconds 300 --rate 40
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

from bench.questions import distinct_questions, fresh_question
from tests.integration.stack import SERVICES, build_stack, dependencies


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def load(
    base_url: str, headers: dict[str, str], rate: float, seconds: float, hit_share: float, latencies: list[float]
) -> Counter:
    pool = [f"Soak question {i}: what is {i} squared?" for i in range(200)]
    # Misses are distinct real questions: generated ones look alike and would be served as hits.
    unseen = distinct_questions()
    outcomes: Counter = Counter()
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=60) as client:

        async def one(question: str) -> None:
            body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": question}]}
            started = time.monotonic()
            try:
                response = await client.post("/v1/chat/completions", json=body)
                latencies.append(time.monotonic() - started)
                outcomes[response.headers.get("x-cache", str(response.status_code))] += 1
                if response.status_code != 200:
                    outcomes[f"status {response.status_code}"] += 1
            except httpx.HTTPError as exc:
                outcomes[f"exception {type(exc).__name__}"] += 1

        tasks = []
        started = time.monotonic()
        sent = 0
        while (elapsed := time.monotonic() - started) < seconds:
            due = int(elapsed * rate)
            while sent < due:
                fresh = random.random() >= hit_share
                question = (unseen.pop() if unseen else fresh_question()) if fresh else random.choice(pool)
                tasks.append(asyncio.create_task(one(question)))
                sent += 1
            if sent % max(int(rate * 10), 1) == 0:
                print(f"  {elapsed:6.0f}s sent {sent} {dict(outcomes)}", flush=True)
            await asyncio.sleep(1 / rate)
        await asyncio.gather(*tasks)
    outcomes["sent"] = sent
    return outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--rate", type=float, default=40)
    parser.add_argument("--hit-share", type=float, default=0.7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, dependencies(Path(tmp)) as urls:
        stack = build_stack(urls, Path(tmp))
        stack.env["MOCK_LATENCY_MS"] = "100"
        try:
            for name in SERVICES:
                stack.start(name)
            stack.wait_ready()
            samples = [{name: rss_mib(p.pid) for name, p in stack.processes.items()}]
            done = threading.Event()

            def sample() -> None:
                while not done.wait(args.seconds / 5):
                    samples.append({name: rss_mib(p.pid) for name, p in stack.processes.items()})

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            print(f"soak: {args.rate}/s for {args.seconds:.0f}s, {args.hit_share:.0%} from a pool of 200", flush=True)
            latencies: list[float] = []
            outcomes = asyncio.run(load(stack.base_url, stack.auth, args.rate, args.seconds, args.hit_share, latencies))
            done.set()
            sampler.join()
            samples.append({name: rss_mib(p.pid) for name, p in stack.processes.items()})
            time.sleep(2)  # the last usage batches
            stats = httpx.get(f"{stack.base_url}/api/v1/cache/stats", headers=stack.auth, timeout=30).json()
            print("\noutcomes:", dict(outcomes))
            print(
                f"requests sent {outcomes['sent']}, usage rows {stats['requests']}, "
                f"hits {stats['hits']}, misses {stats['misses']}, errors {stats['errors']}"
            )
            ordered = sorted(latencies) or [0.0]
            print(
                f"latency (s): p50 {ordered[len(ordered) // 2]:.3f}, p99 {ordered[int(len(ordered) * 0.99)]:.3f},"
                f" worst {ordered[-1]:.3f}"
            )
            print(f"resident memory (MiB), {len(samples)} samples from start to end:")
            for name in samples[0]:
                print(f"{name:<16} " + " ".join(f"{sample[name]:7.1f}" for sample in samples))
        finally:
            stack.stop_all()
            stack.clean_up()


if __name__ == "__main__":
    main()
