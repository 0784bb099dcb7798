"""How fast each dashboard page shows its first screen with 100,000 usage rows and 100,000 cache entries.

`make bench-dashboard` (BENCH_ARGS="--rows 100000 --entries 100000 --runs 5"): starts the whole system on
its own broker prefix, Redis prefix and embedded PostgreSQL (as the integration tests do), writes the rows
and entries of one tenant straight into PostgreSQL (spread over the last 30 days: what the usage log and
the catalogue would hold), then opens each page in Chromium, signed in with that tenant's key (Keys with
the admin key), and times navigation start to the page's first screen drawn with its data. The first run
of each page is cold (a fresh browser context); the median and the worst of the runs are reported, with
the API calls behind each page timed alone. Results: bench-results/dashboard.json.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg

from scripts import dashboard as dashboard_build
from scripts.stack import ROOT
from tests.browser.conftest import CHROMIUM_ARGS, DESKTOP, chromium_path
from tests.integration.stack import SERVICES, build_stack, dependencies

TENANT = "bench"
MODELS = ["gpt-4o-mini", "gpt-4o", "claude-3-5-haiku", "llama-3.1-8b"]
NAMESPACES = ["default", "support", "search", "docs"]
RESULTS = ["hit_exact"] * 30 + ["hit_semantic"] * 15 + ["miss"] * 45 + ["bypass"] * 8 + ["error"] * 2
REFUSALS = ["number_mismatch", "negation_mismatch", "low_confidence", "entity_mismatch", "reported_wrong_hit"]
WORDS = (
    "how what why when where cache proxy water boiling point redis postgres vector semantic exact model token "
    "price latency python docker kubernetes deploy error retry timeout stream answer question paris france "
    "capital river mountain history recipe bread yeast without gluten convert miles kilometres"
).split()

# Each page, where it is, and what on it says its first screen is drawn with its data.
PAGES = [
    ("overview", "/dashboard/", '[data-testid="overview"] [data-testid="stat-requests"]'),
    ("requests", "/dashboard/requests", '[data-testid="usage"][data-loading="false"] tbody tr[data-request-id]'),
    ("cache", "/dashboard/cache", '[data-testid="entries"][data-loading="false"] tbody tr[data-entry-key]'),
    ("wrong hits", "/dashboard/feedback", '[data-testid="reported"] tbody tr'),
    ("keys (admin)", "/dashboard/keys", '[data-testid="keys"] tbody tr[data-key-id]'),
]


def sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 14))).capitalize() + "?"


def seed_usage(conn: psycopg.Connection, rows: int, rng: random.Random, entry_keys: list[str]) -> None:
    now = datetime.now(UTC)
    with (
        conn.cursor() as cur,
        cur.copy(
            "COPY usage_events (event_id, request_id, tenant, key_id, namespace, model, result, reason, prompt_tokens,"
            " completion_tokens, cost_usd, tokens_saved, cost_saved_usd, latency_ms, created_at, cache_key,"
            " similarity, refusals) FROM STDIN"
        ) as copy,
    ):
        for _ in range(rows):
            result = rng.choice(RESULTS)
            hit = result.startswith("hit")
            prompt, completion = rng.randint(20, 400), rng.randint(20, 600)
            refusals = rng.sample(REFUSALS, rng.randint(1, 2)) if result == "miss" and rng.random() < 0.3 else None
            copy.write_row(
                (
                    uuid.uuid4().hex,
                    uuid.uuid4().hex,
                    TENANT,
                    None,
                    rng.choice(NAMESPACES),
                    rng.choice(MODELS),
                    result,
                    rng.choice(["cache_control_no_cache", "temperature_above_limit"]) if result == "bypass" else None,
                    0 if hit else prompt,
                    0 if hit else completion,
                    0.0 if hit else (prompt * 0.15 + completion * 0.6) / 1e6,
                    prompt + completion if hit else 0,
                    (prompt * 0.15 + completion * 0.6) / 1e6 if hit else 0.0,
                    rng.uniform(2, 40) if hit else rng.uniform(300, 3000),
                    now - timedelta(seconds=rng.uniform(0, 30 * 86400)),
                    rng.choice(entry_keys),
                    rng.uniform(0.8, 0.99) if result == "hit_semantic" else None,
                    "{" + ",".join(refusals) + "}" if refusals else None,
                )
            )


def seed_entries(conn: psycopg.Connection, entries: int, rng: random.Random) -> list[str]:
    now = datetime.now(UTC)
    keys = []
    with (
        conn.cursor() as cur,
        cur.copy(
            "COPY cache_entries (id, tenant, namespace, model, exact_key, prompt_text, completion, created_at,"
            " expires_at, hit_count, last_hit_at) FROM STDIN"
        ) as copy,
    ):
        for _ in range(entries):
            key = uuid.uuid4().hex + uuid.uuid4().hex
            keys.append(key)
            created = now - timedelta(seconds=rng.uniform(0, 6 * 86400))
            prompt = sentence(rng)
            completion = {
                "object": "chat.completion",
                "model": "gpt-4o-mini",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": f"**Answer** to: {prompt}"}}],
                "usage": {"prompt_tokens": 20, "completion_tokens": 40, "total_tokens": 60},
            }
            hits = rng.choice([0, 0, 1, 2, 5, 40])
            copy.write_row(
                (
                    uuid.uuid4(),
                    TENANT,
                    rng.choice(NAMESPACES),
                    rng.choice(MODELS),
                    key,
                    prompt,
                    json.dumps(completion),
                    created,
                    created + timedelta(days=7),
                    hits,
                    created + timedelta(hours=1) if hits else None,
                )
            )
    return keys


def time_api(base_url: str, headers: dict[str, str], runs: int) -> dict[str, dict[str, float]]:
    """Each API call a page makes for its first screen, timed alone (ms)."""
    since = time.time() - 86400
    calls = {
        "GET /api/v1/cache/stats (24 h, hours)": ("/api/v1/cache/stats", {"bucket": "hour", "since": since}),
        "GET /api/v1/cache/stats (30 days, days)": (
            "/api/v1/cache/stats",
            {"bucket": "day", "since": time.time() - 30 * 86400},
        ),
        "GET /api/v1/usage (first page of 50)": ("/api/v1/usage", {"limit": 50}),
        "GET /api/v1/usage (model filter)": ("/api/v1/usage", {"limit": 50, "model": "gpt-4o"}),
        "GET /api/v1/cache/entries (first page of 50)": ("/api/v1/cache/entries", {"limit": 50}),
        "GET /api/v1/cache/entries (search 'boiling')": ("/api/v1/cache/entries", {"limit": 50, "q": "boiling"}),
        "GET /api/v1/cache/feedback": ("/api/v1/cache/feedback", {"limit": 50}),
    }
    out = {}
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as client:
        for name, (path, params) in calls.items():
            times = []
            for _ in range(runs):
                started = time.perf_counter()
                client.get(path, params=params).raise_for_status()
                times.append((time.perf_counter() - started) * 1000)
            out[name] = {"median_ms": round(statistics.median(times), 1), "max_ms": round(max(times), 1)}
    return out


def time_pages(base_url: str, tenant_key: str, admin_key: str, runs: int) -> dict[str, dict[str, Any]]:
    """Navigation start to each page's first screen with its data, in Chromium (ms)."""
    from playwright.sync_api import sync_playwright

    path = chromium_path()
    if path is None:
        raise SystemExit("Chromium is needed (Debian: apt-get install chromium)")
    results: dict[str, dict[str, Any]] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            for name, url, ready in PAGES:
                key = admin_key if name.startswith("keys") else tenant_key
                times = []
                for run in range(runs):
                    # Run 0: a fresh context (nothing cached); later runs: the same tab, reloaded.
                    if run == 0:
                        context = browser.new_context(viewport=DESKTOP, base_url=base_url)
                        page = context.new_page()
                        page.goto("/dashboard/")
                        page.evaluate("key => sessionStorage.setItem('llmcache.dashboard.key', key)", key)
                        context.clear_cookies()
                    started = time.perf_counter()
                    page.goto(url)
                    page.locator(ready).first.wait_for(timeout=30_000)
                    times.append((time.perf_counter() - started) * 1000)
                context.close()
                results[name] = {
                    "cold_ms": round(times[0], 1),
                    "median_ms": round(statistics.median(times), 1),
                    "max_ms": round(max(times), 1),
                    "runs": len(times),
                }
        finally:
            browser.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    dashboard_build.build()
    rng = random.Random(19)
    out_dir = ROOT / "bench-results"
    out_dir.mkdir(exist_ok=True)
    tmp = Path(ROOT / ".data" / "bench-dashboard")
    tmp.mkdir(parents=True, exist_ok=True)
    with dependencies(tmp) as urls:
        stack = build_stack(urls, tmp)
        try:
            for name in SERVICES:
                stack.start(name)
            stack.wait_ready()
            admin = {"Authorization": f"Bearer {stack.env['ADMIN_API_KEY']}"}
            httpx.post(
                f"{stack.base_url}/api/v1/admin/tenants", json={"name": TENANT}, headers=admin
            ).raise_for_status()
            created = httpx.post(
                f"{stack.base_url}/api/v1/admin/keys", json={"tenant": TENANT, "name": "bench"}, headers=admin
            )
            created.raise_for_status()
            tenant_key = created.json()["key"]
            started = time.perf_counter()
            with psycopg.connect(stack.env["DATABASE_URL"], autocommit=True) as conn:
                keys = seed_entries(conn, args.entries, rng)
                seed_usage(conn, args.rows, rng, keys)
                conn.execute("ANALYZE usage_events")
                conn.execute("ANALYZE cache_entries")
                counts = {
                    "usage_rows": conn.execute("SELECT count(*) FROM usage_events").fetchone()[0],  # type: ignore[index]
                    "entries": conn.execute("SELECT count(*) FROM cache_entries").fetchone()[0],  # type: ignore[index]
                }
            print(f"seeded {counts} in {time.perf_counter() - started:.1f} s", flush=True)
            tenant_headers = {"Authorization": f"Bearer {tenant_key}"}
            api = time_api(stack.base_url, tenant_headers, args.runs)
            pages = time_pages(stack.base_url, tenant_key, stack.env["ADMIN_API_KEY"], args.runs)
        finally:
            stack.stop_all()
            stack.clean_up()
    report = {"seeded": counts, "pages": pages, "api": api, "runs": args.runs, "machine_cores": _cores()}
    (out_dir / "dashboard.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{'page':<14} {'cold':>9} {'median':>9} {'worst':>9}   (ms, navigation to first screen with data)")
    for name, result in pages.items():
        print(f"{name:<14} {result['cold_ms']:>9.0f} {result['median_ms']:>9.0f} {result['max_ms']:>9.0f}")
    print(f"\n{'API call':<48} {'median':>9} {'worst':>9}   (ms)")
    for name, result in api.items():
        print(f"{name:<48} {result['median_ms']:>9.0f} {result['max_ms']:>9.0f}")
    print(f"\nwritten to {out_dir / 'dashboard.json'}")


def _cores() -> int:
    import os

    return os.cpu_count() or 0


if __name__ == "__main__":
    main()
