"""Latency of exact and semantic hits through the whole path (gateway -> broker -> cache worker -> reply).

Sequential requests over one keep-alive HTTP connection against a running proxy (`make run`):
    .venv/bin/python -m bench.hit_latency [--base-url http://127.0.0.1:8000] [-n 200] [--api-key KEY]
(the key defaults to the one `make run` keeps in .data/dev_api_key)
Semantic hits use the paraphrase with trailing spaces added: a new exact key each time, the same
meaning, so every request takes the embedding + vector search path.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from pathlib import Path

import httpx

QUESTION = "What is the boiling point of water at sea level?"
PARAPHRASE = "What is water's boiling point at sea level?"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("-n", type=int, default=200)
    parser.add_argument("--api-key", default=None)
    args = parser.parse_args()
    key_file = Path(__file__).resolve().parent.parent / ".data" / "dev_api_key"
    api_key = args.api_key or (key_file.read_text().strip() if key_file.exists() else "")
    run = uuid.uuid4().hex[:6]
    system = {"role": "system", "content": f"bench {run}"}  # a partition of this run's own

    def body(text: str) -> dict:
        return {"model": "gpt-4o-mini", "messages": [system, {"role": "user", "content": text}]}

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    with httpx.Client(base_url=args.base_url, headers=headers, timeout=30) as client:
        first = client.post("/v1/chat/completions", json=body(QUESTION))
        first.raise_for_status()
        time.sleep(0.5)  # storing is asynchronous
        results: dict[str, list[float]] = {"exact": [], "semantic": []}
        for kind in results:
            for i in range(args.n):
                text = QUESTION if kind == "exact" else PARAPHRASE + " " * (i + 1)
                started = time.perf_counter()
                response = client.post("/v1/chat/completions", json=body(text))
                elapsed = (time.perf_counter() - started) * 1000
                if response.headers.get("x-cache") != "HIT" or response.headers.get("x-cache-match") != kind:
                    raise SystemExit(f"expected a {kind} hit, got {response.headers.get('x-cache')}")
                results[kind].append(elapsed)
    print(f"{'hit':<9} {'n':>4} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
    for kind, values in results.items():
        print(
            f"{kind:<9} {len(values):>4} {percentile(values, 0.5):>8.2f} {percentile(values, 0.9):>8.2f} "
            f"{percentile(values, 0.99):>8.2f} {statistics.fmean(values):>8.2f}"
        )


if __name__ == "__main__":
    main()
