"""Semantic lookup at scale: EntryStore.nearest over 10k, 100k (and 1M) stored vectors.

Bulk-loads random unit vectors (dim 384, all-MiniLM-L6-v2's) with binary COPY into the cache
worker's own tables in an embedded PostgreSQL, builds the HNSW index the cache worker builds
(timed, with its size), then asks `EntryStore.nearest` (the request path's query: partition filter,
live entries, iterative scan, 5 candidates) for stored vectors plus a little noise, one at a time.
All entries share one partition: the index serves every query, with no filtering loss.

    .venv/bin/python -m bench.scale --sizes 10000,100000[,1000000] [--queries 500]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from psycopg.types.json import Jsonb

from scripts.stack import start_embedded_postgres
from services.cache_worker.entry_store import EntryStore, vector_table
from shared.db import open_pool

DIM = 384
PARTITION = "bench-scale-partition"
EF_SEARCH = 64  # the cache worker's default HNSW_EF_SEARCH
MAINTENANCE_WORK_MEM = "1GB"  # the graph of 1M x 384 floats needs ~2 GB: it builds in pieces above that


def unit_vectors(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, DIM), dtype=np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


async def _load(pool: Any, vectors: np.ndarray, ids: list[uuid.UUID]) -> None:
    now = datetime.now(UTC)
    expires = now + timedelta(days=7)
    completion = Jsonb({"choices": [{"message": {"role": "assistant", "content": "stored answer"}}]})
    table = vector_table(DIM)
    async with pool.connection() as conn:
        async with conn.cursor() as cur:
            async with cur.copy(
                "COPY cache_entries (id, tenant, namespace, model, exact_key, partition_key, embedding_model,"
                " embedding_dim, prompt_text, completion, created_at, expires_at) FROM STDIN"
            ) as copy:
                for i, entry_id in enumerate(ids):
                    await copy.write_row(
                        (
                            entry_id,
                            "bench",
                            "",
                            "gpt-4o-mini",
                            f"bench:{entry_id.hex}",
                            PARTITION,
                            "all-MiniLM-L6-v2",
                            DIM,
                            f"stored prompt {i}",
                            completion,
                            now,
                            expires,
                        )
                    )
            async with cur.copy(
                f"COPY {table} (entry_id, partition_key, expires_at, created_at, embedding) FROM STDIN (FORMAT BINARY)"
            ) as copy:
                copy.set_types(["uuid", "text", "timestamptz", "timestamptz", "vector"])
                for entry_id, vector in zip(ids, vectors, strict=True):
                    await copy.write_row((entry_id, PARTITION, expires, now, vector))


async def _one_size(url: str, size: int, queries: int, progress: Callable[[str], None]) -> dict[str, Any]:
    rng = np.random.default_rng(size)
    pool = await open_pool(url, min_size=1, max_size=2, name="bench-scale")
    table = vector_table(DIM)
    try:
        store = EntryStore(pool, EF_SEARCH)
        await store.ensure_schema()
        await store.nearest(PARTITION, [0.0] * DIM, None)  # creates the vector table and its indexes
        async with pool.connection() as conn:
            await conn.execute("TRUNCATE cache_entries CASCADE")
            await conn.execute(f"DROP INDEX IF EXISTS {table}_hnsw")
        vectors = unit_vectors(rng, size)
        ids = [uuid.uuid4() for _ in range(size)]
        progress(f"scale {size:,}: loading (binary COPY)")
        started = time.perf_counter()
        for start in range(0, size, 50_000):
            await _load(pool, vectors[start : start + 50_000], ids[start : start + 50_000])
        load_seconds = time.perf_counter() - started
        progress(f"scale {size:,}: loaded in {load_seconds:.1f}s; building HNSW")
        async with pool.connection() as conn:
            await conn.execute(f"SET maintenance_work_mem = '{MAINTENANCE_WORK_MEM}'")
            await conn.execute("SET max_parallel_maintenance_workers = 1")  # leader + 1: two cores
            started = time.perf_counter()
            await conn.execute(f"CREATE INDEX {table}_hnsw ON {table} USING hnsw (embedding vector_cosine_ops)")
            build_seconds = time.perf_counter() - started
            await conn.execute(f"VACUUM ANALYZE {table}")
            cursor = await conn.execute(
                f"SELECT pg_relation_size('{table}_hnsw'), pg_total_relation_size('{table}'),"
                " pg_total_relation_size('cache_entries')"
            )
            index_bytes, table_bytes, entries_bytes = await cursor.fetchone()  # type: ignore[misc]
        progress(f"scale {size:,}: HNSW built in {build_seconds:.1f}s ({index_bytes / 2**20:.0f} MiB); querying")
        picks = rng.integers(0, size, queries)
        noise = rng.standard_normal((queries, DIM), dtype=np.float32) * 0.02
        latencies = []
        found = 0
        for warmup in (True, False):
            for n, (pick, delta) in enumerate(zip(picks, noise, strict=True)):
                if warmup and n >= 50:
                    break
                query = vectors[pick] + delta
                query /= np.linalg.norm(query)
                started = time.perf_counter()
                candidates = await store.nearest(PARTITION, query.tolist(), None, limit=5)
                if not warmup:
                    latencies.append((time.perf_counter() - started) * 1000)
                    found += bool(candidates) and candidates[0].answer.entry_id == str(ids[pick])
        ordered = sorted(latencies)
        result = {
            "load_seconds": round(load_seconds, 2),
            "hnsw_build_seconds": round(build_seconds, 2),
            "maintenance_work_mem": MAINTENANCE_WORK_MEM,
            "index_mib": round(index_bytes / 2**20, 1),
            "table_mib": round(table_bytes / 2**20, 1),
            "entries_table_mib": round(entries_bytes / 2**20, 1),
            "queries": len(ordered),
            "nearest_p50_ms": round(ordered[len(ordered) // 2], 3),
            "nearest_p90_ms": round(ordered[int(len(ordered) * 0.9)], 3),
            "nearest_p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 3),
            "recall_at_1": round(found / len(ordered), 4),
            "ef_search": EF_SEARCH,
        }
        progress(
            f"scale {size:,}: nearest p50 {result['nearest_p50_ms']:.2f} ms p99 {result['nearest_p99_ms']:.2f} ms "
            f"recall@1 {result['recall_at_1']:.3f}"
        )
        return result
    finally:
        await pool.close()


def run_sizes(sizes: list[int], progress: Callable[[str], None]) -> dict[str, Any]:
    """Each size in turn in one embedded PostgreSQL (its own temporary data folder)."""
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        postgres = start_embedded_postgres(Path(tmp) / "postgres", cleanup_mode="delete")
        try:
            for size in sizes:
                results[str(size)] = asyncio.run(_one_size(postgres.get_uri(), size, 500, progress))
        finally:
            postgres.cleanup()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000")
    args = parser.parse_args()
    started = time.monotonic()
    results = run_sizes(
        [int(x) for x in args.sizes.split(",")],
        lambda m: print(f"[{time.monotonic() - started:6.1f}s] {m}", flush=True),
    )
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
