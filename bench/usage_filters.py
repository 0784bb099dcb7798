"""How long the usage log's `?request_id=` and `?cache_key=` filters take on one tenant's 100,000 rows, with
their indexes (usage_events_tenant_request, usage_events_tenant_entry) and without them (what the
tenant's (tenant, created_at, event_id) index alone gave: a scan of the tenant's whole log).

`make bench-usage-filters` (BENCH_ARGS="--rows 100000 --runs 20"): an embedded PostgreSQL of its own,
the rows written with COPY (spread over 30 days, 2,000 entries), ANALYZE, then each filter run through
the stats consumer's own query (query_usage) `--runs` times, cold run dropped. Results:
bench-results/usage_filters.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from scripts.stack import ROOT, start_embedded_postgres
from services.stats_consumer.queries import query_usage, usage_statement
from services.stats_consumer.repository import ensure_schema
from shared.contracts.stats import UsageQuery
from shared.db import open_pool

TENANT = "bench"
NEW_INDEXES = ["usage_events_tenant_request", "usage_events_tenant_entry"]


def seed(url: str, rows: int, entries: int, rng: random.Random) -> tuple[list[str], list[str]]:
    """`rows` usage rows of one tenant (and as many of another); returns some request ids and entry keys."""
    now = datetime.now(UTC)
    keys = [uuid.uuid4().hex for _ in range(entries)]
    requests: list[str] = []
    with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cur:
        with cur.copy(
            "COPY usage_events (event_id, request_id, tenant, model, result, latency_ms, created_at, cache_key)"
            " FROM STDIN"
        ) as copy:
            for tenant in (TENANT, "other"):
                for _ in range(rows):
                    request_id = uuid.uuid4().hex
                    if tenant == TENANT and rng.random() < 0.001:
                        requests.append(request_id)
                    copy.write_row(
                        (
                            uuid.uuid4().hex,
                            request_id,
                            tenant,
                            "gpt-4o-mini",
                            rng.choice(["hit_exact", "hit_semantic", "miss"]),
                            rng.uniform(2, 2000),
                            now - timedelta(seconds=rng.uniform(0, 30 * 86400)),
                            rng.choice(keys),
                        )
                    )
        cur.execute("ANALYZE usage_events")
    return requests, keys


async def time_filters(
    pool: AsyncConnectionPool, requests: list[str], keys: list[str], runs: int, rng: random.Random
) -> dict[str, dict[str, object]]:
    """Each filter's first page (50 rows), median and worst of `runs` (ms), and its plan's top node."""
    queries = {
        "request_id": lambda: UsageQuery(tenant=TENANT, request_id=rng.choice(requests)),
        "cache_key": lambda: UsageQuery(tenant=TENANT, cache_key=rng.choice(keys)),
    }
    out: dict[str, dict[str, object]] = {}
    for name, make in queries.items():
        await query_usage(pool, make())  # cold: caches warmed alike for both variants
        times = []
        for _ in range(runs):
            query = make()
            started = time.perf_counter()
            page = await query_usage(pool, query)
            times.append((time.perf_counter() - started) * 1000)
            assert page.items, "every filter names rows that exist"
        statement = usage_statement(make())
        async with pool.connection() as conn:
            plan = await (await conn.execute(sql.SQL("EXPLAIN ") + statement.query, statement.params)).fetchall()
        out[name] = {
            "median_ms": round(statistics.median(times), 2),
            "max_ms": round(max(times), 2),
            "plan": next(row[0].strip(" ->") for row in plan if "Scan" in row[0]),
        }
    return out


async def run(url: str, rows: int, entries: int, runs: int) -> dict[str, object]:
    rng = random.Random(6)
    pool = await open_pool(url, min_size=1, max_size=2, name="bench-usage-filters", vector=False)
    try:
        await ensure_schema(pool)
        started = time.perf_counter()
        requests, keys = await asyncio.to_thread(seed, url, rows, entries, rng)
        seeded = round(time.perf_counter() - started, 1)
        with_indexes = await time_filters(pool, requests, keys, runs, rng)
        async with pool.connection() as conn:
            for index in NEW_INDEXES:
                await conn.execute(f"DROP INDEX {index}")
        without = await time_filters(pool, requests, keys, runs, rng)
    finally:
        await pool.close()
    return {
        "rows_of_the_tenant": rows,
        "rows_in_all": 2 * rows,
        "entries": entries,
        "runs": runs,
        "seed_seconds": seeded,
        "with_indexes": with_indexes,
        "without_them": without,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--entries", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    data = ROOT / ".data" / "bench-usage-filters" / "pg"
    server = start_embedded_postgres(Path(data), cleanup_mode="delete")
    try:
        report = asyncio.run(run(server.get_uri(), args.rows, args.entries, args.runs))
    finally:
        server.cleanup()
    out = ROOT / "bench-results" / "usage_filters.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'filter':<12} {'indexed (ms)':>14} {'without (ms)':>14}   one tenant's {args.rows:,} rows, median")
    for name in ("request_id", "cache_key"):
        new, old = report["with_indexes"][name], report["without_them"][name]  # type: ignore[index]
        print(f"{name:<12} {new['median_ms']:>14} {old['median_ms']:>14}")
        print(f"{'':<12} plan: {new['plan']}  /  without: {old['plan']}")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
