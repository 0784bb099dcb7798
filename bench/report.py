"""The benchmark's verdicts, table and chart, computed from the results alone, so they can be redrawn:

.venv/bin/python -m bench.report bench-results/results.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

# The targets on a 2-core machine: (name, results path, comparison, bound).
TARGETS = [
    ("exact hit p50 at c=1 (ms)", ("targets", "ours", "exact_c1", "p50_ms"), "<=", 2.0),
    ("exact hit p99 at c=1 (ms)", ("targets", "ours", "exact_c1", "p99_ms"), "<=", 8.0),
    ("exact hits per second at c=64", ("targets", "ours", "exact_c64", "rps"), ">=", 1500.0),
    ("semantic hit p50 at c=1 (ms)", ("targets", "ours", "semantic_c1", "p50_ms"), "<=", 12.0),
    ("miss overhead p50 (ms)", ("miss_overhead", "ours", "p50_ms"), "<=", 3.0),
    ("semantic lookup p99 at 1M entries (ms)", ("scale", "1000000", "nearest_p99_ms"), "<=", 15.0),
    ("exact-hit throughput vs LiteLLM (x)", ("ratios", "litellm", "exact_c64_rps"), ">=", 2.0),
    ("exact-hit p50 at c=1 vs LiteLLM (ours/theirs)", ("ratios", "litellm", "exact_c1_p50"), "<=", 1.0),
    ("exact-hit p99 at c=1 vs LiteLLM (ours/theirs)", ("ratios", "litellm", "exact_c1_p99"), "<=", 1.0),
]
HIT_VALUES_NOT_HITS = {"none", "MISS", "BYPASS"}


def cache_summary(cache: dict[str, int]) -> str:
    """The header counts in a line: hits (any value but none/MISS/BYPASS) and the rest by value."""
    hits = sum(v for k, v in cache.items() if k not in HIT_VALUES_NOT_HITS)
    rest = {k: v for k, v in cache.items() if k in HIT_VALUES_NOT_HITS}
    return f"hit-header {hits}" + "".join(f" {k} {v}" for k, v in rest.items())


def _get(results: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = results
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


# Ours with `X-Cache-Mode: exact`: measured on misses only, beside the full system.
EXACT_MODE = "ours_exact_mode"


def add_summary(results: dict[str, Any]) -> None:
    """Add miss overhead, ratios (ours / theirs) and the target verdicts to the results."""
    direct = results.get("mock_direct", {})
    overhead = {}
    for name, runs in results.get("targets", {}).items():
        miss = runs.get("miss_c1")
        if miss and "p50_ms" in miss and direct:
            overhead[name] = {
                q: round(miss[q] - direct[q], 3) for q in ("p50_ms", "p90_ms", "p99_ms") if q in miss and q in direct
            }
    results["miss_overhead"] = overhead
    ours = results.get("targets", {}).get("ours", {})
    ratios: dict[str, dict[str, float]] = {}
    for name, runs in results.get("targets", {}).items():
        if name in ("ours", EXACT_MODE) or "skipped" in runs:
            continue
        ratio = {}
        for key in ("exact_c1", "semantic_c1"):
            for q in ("p50_ms", "p99_ms"):
                a, b = _get(ours, (key, q)), _get(runs, (key, q))
                if a and b:
                    ratio[f"{key}_{q.removesuffix('_ms')}"] = round(a / b, 3)
        for key in ("exact_c64", "semantic_c64"):
            a, b = _get(ours, (key, "rps")), _get(runs, (key, "rps"))
            if a and b:
                ratio[f"{key}_rps"] = round(a / b, 3)
        a, b = _get(overhead, ("ours", "p50_ms")), _get(overhead, (name, "p50_ms"))
        if a is not None and b:
            ratio["miss_overhead_p50"] = round(a / b, 3)
        a = _get(overhead, (EXACT_MODE, "p50_ms"))
        if a is not None and b:
            ratio["miss_overhead_p50_exact_mode"] = round(a / b, 3)
        ratios[name] = ratio
    results["ratios"] = ratios
    verdicts = []
    for label, path, op, bound in TARGETS:
        value = _get(results, path)
        met = None if value is None else (value <= bound if op == "<=" else value >= bound)
        verdicts.append({"target": label, "bound": f"{op} {bound:g}", "value": value, "met": met})
    results["verdicts"] = verdicts


def _fmt(value: Any, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def table(results: dict[str, Any]) -> str:
    """Markdown tables: latency and throughput per system, ratios, targets."""
    lines = [
        "| system | workload | p50 ms | p90 ms | p99 ms | req/s | requests | upstream calls |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, runs in results.get("targets", {}).items():
        if "skipped" in runs:
            lines.append(f"| {name} | skipped: {runs['skipped'][:160]} | | | | | | |")
            continue
        for key, run in runs.items():
            if "skipped" in run:
                lines.append(f"| {name} | {key}: skipped ({run['skipped'][:90]}) | | | | | | |")
                continue
            lines.append(
                f"| {name} | {key} | {_fmt(run['p50_ms'])} | {_fmt(run['p90_ms'])} | {_fmt(run['p99_ms'])} | "
                f"{_fmt(run['rps'], 0)} | {run['requests']:,} | {run['upstream_calls']} |"
            )
    direct = results.get("mock_direct")
    if direct:
        lines.append(
            f"| mock upstream, direct | miss baseline | {_fmt(direct['p50_ms'])} | {_fmt(direct['p90_ms'])} | "
            f"{_fmt(direct['p99_ms'])} | {_fmt(direct['rps'], 0)} | {direct['requests']:,} | |"
        )
    overhead = results.get("miss_overhead", {})
    if overhead:
        lines += ["", "| system | miss overhead p50 ms | p90 ms | p99 ms |", "|---|---|---|---|"]
        for name, o in overhead.items():
            lines.append(f"| {name} | {_fmt(o.get('p50_ms'))} | {_fmt(o.get('p90_ms'))} | {_fmt(o.get('p99_ms'))} |")
    for name, ratio in results.get("ratios", {}).items():
        lines += ["", f"| ours / {name} | ratio |", "|---|---|"]
        lines += [f"| {k} | {v:.3f} |" for k, v in ratio.items()]
    replicas = results.get("replicas")
    if replicas:
        lines += ["", "| replicas | exact c=64 req/s | semantic c=64 req/s |", "|---|---|---|"]
        for label, runs in replicas.items():
            lines.append(
                f"| {label} | {_fmt(_get(runs, ('exact_c64', 'rps')), 0)} | "
                f"{_fmt(_get(runs, ('semantic_c64', 'rps')), 0)} |"
            )
    cpu = results.get("cpu_per_exact_hit")
    if cpu:
        lines += [
            "",
            f"| process (exact hits, c=64, {cpu['rps']:,.0f}/s) | CPU ms per hit | cores busy |",
            "|---|---|---|",
        ]
        for name, ms in cpu["cpu_ms_per_request"].items():
            if ms >= 0.005:
                lines.append(f"| {name} | {ms:.3f} | {cpu['cores_busy'][name]:.2f} |")
    scale = _sizes(results)
    if scale:
        lines += [
            "",
            "| stored vectors | load s | HNSW build s | index MiB | table MiB | nearest p50 ms | p99 ms | recall@1 |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for size, s in scale.items():
            lines.append(
                f"| {int(size):,} | {_fmt(s['load_seconds'], 1)} | {_fmt(s['hnsw_build_seconds'], 1)} | "
                f"{_fmt(s['index_mib'], 0)} | {_fmt(s['vector_table_mib'], 0)} | {_fmt(s['nearest_p50_ms'])} | "
                f"{_fmt(s['nearest_p99_ms'])} | {_fmt(s['recall_at_1'], 3)} |"
            )
    verdicts = results.get("verdicts", [])
    if verdicts:
        lines += ["", "| target | bound | measured | met |", "|---|---|---|---|"]
        for v in verdicts:
            met = "not measured" if v["met"] is None else ("yes" if v["met"] else "**no**")
            lines.append(f"| {v['target']} | {v['bound']} | {_fmt(v['value'])} | {met} |")
    return "\n".join(lines)


def _sizes(results: dict[str, Any]) -> dict[str, Any]:
    """The scale runs by stored-vector count (the scale results also hold the server's settings)."""
    return {k: v for k, v in (results.get("scale") or {}).items() if k.isdigit()}


def chart(results: dict[str, Any], path: Path) -> None:
    """Latency at c=1 and throughput at c=64 per system and workload; the scale curve if measured."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    systems = {n: r for n, r in results.get("targets", {}).items() if "skipped" not in r and n != EXACT_MODE}
    scale = _sizes(results)
    fig, axes = plt.subplots(1, 3 if scale else 2, figsize=(16 if scale else 11, 4.5))
    width = 0.8 / max(len(systems), 1)
    latency_keys = ["exact_c1", "semantic_c1", "miss overhead"]
    overhead = results.get("miss_overhead", {})
    for i, (name, runs) in enumerate(systems.items()):
        runs = runs | {"miss overhead": overhead.get(name, {})}
        p50 = [_get(runs, (k, "p50_ms")) or 0 for k in latency_keys]
        p99 = [_get(runs, (k, "p99_ms")) or 0 for k in latency_keys]
        xs = [x + i * width for x in range(len(latency_keys))]
        axes[0].bar(xs, p50, width, label=f"{name} p50")
        axes[0].scatter(xs, p99, marker="_", s=300, color="black", zorder=3, label="p99" if i == 0 else None)
        rps = [_get(runs, (k, "rps")) or 0 for k in ("exact_c64", "semantic_c64")]
        axes[1].bar([x + i * width for x in range(2)], rps, width, label=name)
    axes[0].set_yscale("log")
    axes[0].set_xticks([x + width * (len(systems) - 1) / 2 for x in range(len(latency_keys))], latency_keys)
    axes[0].set_ylabel("ms (log)")
    axes[0].set_title("at concurrency 1: hit latency, miss overhead (bar p50, tick p99)")
    axes[0].legend(fontsize=8, loc="upper left")
    axes[1].set_xticks([x + width * (len(systems) - 1) / 2 for x in range(2)], ["exact_c64", "semantic_c64"])
    axes[1].set_ylabel("requests / s")
    axes[1].set_title("throughput at concurrency 64")
    axes[1].legend(fontsize=8)
    if scale:
        sizes = sorted(scale, key=int)
        axes[2].plot([int(s) for s in sizes], [scale[s]["nearest_p50_ms"] for s in sizes], "o-", label="p50")
        axes[2].plot([int(s) for s in sizes], [scale[s]["nearest_p99_ms"] for s in sizes], "o-", label="p99")
        axes[2].set_xscale("log")
        axes[2].set_xlabel("stored vectors")
        axes[2].set_ylabel("ms")
        axes[2].set_title("EntryStore.nearest (pgvector HNSW)")
        axes[2].legend(fontsize=8)
    fig.suptitle(
        f"LLM Cache Proxy bench, mock upstream {results['config']['mock_latency_ms']} ms, {results['started_at']}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    source = Path(sys.argv[1] if len(sys.argv) > 1 else "bench-results/results.json")
    data = json.loads(source.read_text())
    add_summary(data)
    chart(data, source.with_suffix(".png"))
    print(table(data))
