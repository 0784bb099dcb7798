"""Semantic match quality through the cache's real decision path, on the held-out development pairs.

For every pair {a, b, same_answer}: store `a` as the cache stores it, ask `b`, and see whether the
cache serves a's answer. Local mode (the default) runs the real pieces in-process: the embedder's
local provider (all-MiniLM-L6-v2), PostgreSQL with pgvector (embedded) through the cache worker's
EntryStore, and the same `choose_candidate` as a lookup (similarity pre-filter, conversation
context, hit verifier). Each pair gets a partition of its own, so a pair is judged on its own.
`--http` sends the pairs through a running gateway instead (store a, ask b, read X-Cache).

Prints, per file and per category, the share of should-hit pairs served and of should-not-hit
pairs served (wrong answers), the decision latency, and writes eval/results/summary.json and a chart
of served against wrong across the verifier's setting (min_probability) to eval/results/.

The lookup passes the verifier the two prompts' texts, similarity and vectors (the query's and the
stored one), so the verifier's model that weighs both vectors decides; the text-only model (what
decides when the vectors are of another dimension) is scored beside it on the same candidates
(same pre-filter, context check and hard rules).

    PYTHONPATH=. .venv/bin/python -m eval.harness                  # held-out split, 2,000 Quora pairs
    PYTHONPATH=. .venv/bin/python -m eval.harness --http http://127.0.0.1:8000 --api-key lcp-...
    PYTHONPATH=. .venv/bin/python -m eval.harness --pairs my_pairs.jsonl  # your own pairs, whole

A pair file of your own has the same rows; give them a "category" (any name) and the report
counts them as traps: per category, and in the sweep across the setting.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from eval.dataset import CONVERSATION_FILES, DATA_DIR, PAIR_FILES, Pair, is_genuine, is_look_alike, load, sample, split
from services.cache_worker import keys
from services.cache_worker.verifier.calibrated import CalibratedModel, CalibratedVerifier, hard_refusal

RESULTS = Path(__file__).resolve().parent / "results"
MODEL = "gpt-4o-mini"
TENANT = "eval"
PROBABILITY_SWEEP = tuple(round(x, 2) for x in np.arange(0.0, 1.0, 0.02))


@dataclass
class Outcome:
    """What happened to one pair."""

    pair: Pair
    served: bool
    similarity: float | None = None  # of the best candidate, hit or miss
    seconds: float = 0.0  # decision: vector search + checks (local), or the request of b (http)
    verifier_seconds: float = 0.0
    refusals: list[str] = field(default_factory=list)
    # For the sweep: everything above the pre-filter and the context check except the probability cut.
    eligible: bool = False
    probability: float = 0.0  # of the model the lookup used (with both prompt vectors)
    probability_text_only: float = 0.0  # of the model on the texts alone


def body_of(side: Any) -> dict[str, Any]:
    messages = side if isinstance(side, list) else [{"role": "user", "content": side}]
    return {"model": MODEL, "messages": messages}


def load_pairs(which: str, qqp_sample: int | None) -> list[Pair]:
    pairs: list[Pair] = []
    for name in PAIR_FILES + CONVERSATION_FILES:
        rows = load(DATA_DIR / name)
        # The conversation file trains nothing (its context threshold was chosen on it before): all rows.
        train, held_out = split(rows) if name not in CONVERSATION_FILES else ([], rows)
        part = {"held-out": held_out, "train": train, "all": rows}[which]
        pairs += sample(part, qqp_sample) if name.startswith("qqp") else part
    return pairs


def progress(done: int, total: int, started: float, label: str) -> None:
    rate = done / max(time.perf_counter() - started, 1e-9)
    eta = (total - done) / rate if rate else 0
    sys.stderr.write(f"\r  {label}: {done}/{total} ({rate:.0f}/s, {eta:.0f}s left)   ")
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()


# --- local mode: the real pieces in-process ------------------------------------------------------


async def run_local(pairs: list[Pair], model: CalibratedModel, min_probability: float | None) -> list[Outcome]:
    from scripts.stack import ROOT, start_embedded_postgres
    from services.cache_worker.entries import CachedAnswer
    from services.cache_worker.entry_store import EntryStore, NewEntry
    from services.cache_worker.lookup import choose_candidate
    from services.cache_worker.settings import Settings
    from services.embedder.providers.local import LocalEmbeddingProvider
    from shared.db import open_pool

    settings = Settings(database_url="postgresql://unused")
    verifier = CalibratedVerifier(model, min_probability)
    if verifier.min_probability is not None:
        setting = f"min_probability {verifier.min_probability}"
    else:  # each model has its own operating point; the lookup uses the one with the vectors
        vectors_default = model.with_embeddings.default_min_probability if model.with_embeddings else None
        setting = f"min_probability {vectors_default} (text-only model: {model.default_min_probability})"
    print(f"verifier: calibrated, {setting}; pre-filter {settings.similarity_threshold}")
    print("starting embedded PostgreSQL (pgvector) and the local embedding model...", flush=True)
    postgres = start_embedded_postgres(ROOT / ".data" / "eval-postgres")
    pool = await open_pool(postgres.get_uri(), min_size=1, max_size=2, name="eval")
    provider = LocalEmbeddingProvider(threads=2)
    await provider.start()
    entries = EntryStore(pool, settings.hnsw_ef_search)
    await entries.ensure_schema()
    run_id = uuid.uuid4().hex[:8]
    outcomes = []
    try:
        # Embed every prompt and context in batches (the embedder micro-batches the same way).
        texts: list[str] = []
        for pair in pairs:
            for side in (pair.a, pair.b):
                body = body_of(side)
                texts.append(keys.semantic_prompt(body) or "")
                texts.append(keys.conversation(body).context_text or "")
        unique = sorted(set(texts))
        vectors: dict[str, list[float]] = {}
        started = time.perf_counter()
        for i in range(0, len(unique), 64):
            batch = unique[i : i + 64]
            vectors.update(zip(batch, await provider.embed(batch), strict=True))
            progress(min(i + 64, len(unique)), len(unique), started, "embedding")

        started = time.perf_counter()
        for i, pair in enumerate(pairs):
            namespace = f"{run_id}-{i}"
            stored_body, asked_body = body_of(pair.a), body_of(pair.b)
            a_prompt, b_prompt = keys.semantic_prompt(stored_body) or "", keys.semantic_prompt(asked_body) or ""
            a_context = keys.conversation(stored_body).context_text
            b_context = keys.conversation(asked_body).context_text
            answer = CachedAnswer(
                entry_id=str(uuid.uuid4()),
                exact_key=keys.exact_key(TENANT, namespace, stored_body),
                model=MODEL,
                completion={"choices": [{"message": {"role": "assistant", "content": "stored"}}]},
                created_at=time.time(),
            )
            await entries.put(
                NewEntry(
                    answer=answer,
                    tenant=TENANT,
                    namespace=namespace,
                    ttl_seconds=3600,
                    prompt_text=a_prompt,
                    partition_key=keys.partition_key(TENANT, namespace, stored_body, provider.model),
                    embedding_model=provider.model,
                    embedding=vectors[a_prompt],
                    context_embedding=vectors[a_context] if a_context is not None else None,
                    context_text=a_context,
                )
            )
            outcomes.append(
                await decide_local(
                    pair,
                    entries,
                    choose_candidate,
                    verifier,
                    keys.partition_key(TENANT, namespace, asked_body, provider.model),
                    b_prompt,
                    vectors[b_prompt],
                    vectors[b_context] if b_context is not None else None,
                    b_context,
                    settings,
                )
            )
            if (i + 1) % 50 == 0 or i + 1 == len(pairs):
                progress(i + 1, len(pairs), started, "store a, ask b")
        async with pool.connection() as conn:
            await conn.execute("DELETE FROM cache_entries WHERE tenant = %s", (TENANT,))
    finally:
        await provider.close()
        await pool.close()
    return outcomes


async def decide_local(
    pair: Pair,
    entries: Any,
    choose_candidate: Any,
    verifier: CalibratedVerifier,
    partition: str,
    prompt: str,
    vector: list[float],
    context_vector: list[float] | None,
    context_text: str | None,
    settings: Any,
) -> Outcome:
    """One lookup's semantic decision, timed: the vector search and the checks, as in Lookup."""
    from services.cache_worker.lookup import context_refusal

    started = time.perf_counter()
    candidates = await entries.nearest(partition, vector, None, context_vector, limit=5)
    context_threshold = settings.context_similarity_threshold if context_vector is not None else None
    checks = time.perf_counter()
    choice = await choose_candidate(
        candidates, prompt, settings.similarity_threshold, verifier, context_threshold, vector, context_text
    )
    finished = time.perf_counter()
    outcome = Outcome(
        pair,
        choice.candidate is not None,
        candidates[0].similarity if candidates else None,
        finished - started,
        finished - checks,
        choice.refusals,
    )
    if candidates and candidates[0].similarity >= settings.similarity_threshold:
        best = candidates[0]
        context_ok = context_threshold is None or context_refusal(best, context_threshold, context_text) is None
        features = verifier.model.features(prompt, best.prompt_text or "", best.similarity)
        hard = prompt != best.prompt_text and hard_refusal(features) is not None
        outcome.eligible = context_ok and not hard
        same = prompt == best.prompt_text or (features.respelled and not hard)
        vectors = (vector, best.embedding) if best.embedding is not None else None
        outcome.probability = 1.0 if same else verifier.model.scored(features, vectors)[0]
        outcome.probability_text_only = 1.0 if same else verifier.model.probability(features)
    return outcome


# --- http mode: through a running gateway ------------------------------------------------------------


async def run_http(pairs: list[Pair], base_url: str, api_key: str, concurrency: int) -> list[Outcome]:
    import httpx

    run_id = uuid.uuid4().hex[:8]
    semaphore = asyncio.Semaphore(concurrency)
    done = 0
    started = time.perf_counter()

    async def one(client: httpx.AsyncClient, i: int, pair: Pair) -> Outcome:
        nonlocal done
        headers = {"Authorization": f"Bearer {api_key}", "X-Cache-Namespace": f"eval-{run_id}-{i}"}
        url = f"{base_url.rstrip('/')}/v1/chat/completions"
        async with semaphore:
            first = await client.post(url, json=body_of(pair.a), headers=headers)
            first.raise_for_status()
            # Storing is asynchronous: wait until asking `a` again is an exact hit (so it is stored).
            for _ in range(50):
                again = await client.post(url, json=body_of(pair.a), headers=headers)
                if again.headers.get("x-cache") == "HIT":
                    break
                await asyncio.sleep(0.1)
            asked = time.perf_counter()
            response = await client.post(url, json=body_of(pair.b), headers=headers)
            seconds = time.perf_counter() - asked
        done += 1
        if done % 20 == 0 or done == len(pairs):
            progress(done, len(pairs), started, "store a, ask b (http)")
        similarity = response.headers.get("x-cache-similarity")
        served = response.headers.get("x-cache") == "HIT"
        return Outcome(pair, served, float(similarity) if similarity else None, seconds)

    async with httpx.AsyncClient(timeout=60) as client:
        return list(await asyncio.gather(*(one(client, i, p) for i, p in enumerate(pairs))))


# --- the report -------------------------------------------------------------------------------------


def pct(numerator: int, denominator: int) -> str:
    return f"{100 * numerator / denominator:5.1f}%" if denominator else "    -"


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else 0.0


def group_rows(outcomes: list[Outcome]) -> list[tuple[str, list[Outcome]]]:
    by_file: dict[str, list[Outcome]] = defaultdict(list)
    by_category: dict[tuple[str, str], list[Outcome]] = defaultdict(list)
    for o in outcomes:
        by_file[o.pair.file].append(o)
        if o.pair.trap or o.pair.file == "conversations_dev":
            by_category[(o.pair.file, o.pair.category)].append(o)
    rows: list[tuple[str, list[Outcome]]] = []
    for name, members in by_file.items():
        rows.append((name, members))
        if any(o.pair.trap for o in members):
            rows.append(("  look-alikes (all)", [o for o in members if is_look_alike(o.pair)]))
            rows.append(("  genuine (paraphrase + near_repeat)", [o for o in members if o.pair.same_answer]))
        rows += [(f"  {cat}", group) for (file, cat), group in sorted(by_category.items()) if file == name]
    return rows


def summarize(outcomes: list[Outcome], latency: bool = True) -> dict[str, Any]:
    table = []
    print(f"\n{'file / category':38} {'pairs':>6} {'should hit: served':>20} {'should not: served (wrong)':>28}")
    for label, members in group_rows(outcomes):
        should = [o for o in members if o.pair.same_answer]
        should_not = [o for o in members if not o.pair.same_answer]
        served = sum(o.served for o in should)
        wrong = sum(o.served for o in should_not)
        print(
            f"{label:38} {len(members):6d} {pct(served, len(should)):>11} ({served:4d}/{len(should):<4d})"
            f" {pct(wrong, len(should_not)):>15} ({wrong:4d}/{len(should_not):<4d})"
        )
        table.append(
            {
                "group": label.strip(),
                "pairs": len(members),
                "should_hit": len(should),
                "served": served,
                "should_not_hit": len(should_not),
                "wrong": wrong,
            }
        )
    qqp = [o for o in outcomes if o.pair.file == "qqp_pairs_dev"]
    qqp_served = [o for o in qqp if o.served]
    precision = sum(o.pair.same_answer for o in qqp_served) / len(qqp_served) if qqp_served else float("nan")
    recall = sum(o.served for o in qqp if o.pair.same_answer) / max(sum(o.pair.same_answer for o in qqp), 1)
    if qqp:
        print(f"\nQuora pairs: precision {precision:.3f} (served {len(qqp_served)}), recall {recall:.3f}")
    if not latency:
        return {"table": table, "qqp_precision": precision, "qqp_recall": recall}
    decision = [o.seconds * 1000 for o in outcomes]
    verifier = [o.verifier_seconds * 1000 for o in outcomes if o.verifier_seconds]
    latency = {
        "decision_ms_p50": percentile(decision, 50),
        "decision_ms_p99": percentile(decision, 99),
        "verifier_ms_p50": percentile(verifier, 50),
        "verifier_ms_p99": percentile(verifier, 99),
    }
    if verifier:
        print(
            f"latency: decision (vector search + checks) p50 {latency['decision_ms_p50']:.2f} ms,"
            f" p99 {latency['decision_ms_p99']:.2f} ms; verifier p50 {latency['verifier_ms_p50']:.3f} ms,"
            f" p99 {latency['verifier_ms_p99']:.3f} ms"
        )
    else:  # over HTTP the verifier runs inside the cache worker: its histogram is on /metrics
        print(f"latency: request of b p50 {latency['decision_ms_p50']:.2f} ms, p99 {latency['decision_ms_p99']:.2f} ms")
    refusals: dict[str, int] = defaultdict(int)
    for o in outcomes:
        for reason in o.refusals:
            refusals[reason] += 1
    if refusals:
        print("refused candidates by reason: " + ", ".join(f"{k} {v}" for k, v in sorted(refusals.items())))
    return {"table": table, "qqp_precision": precision, "qqp_recall": recall, "latency": latency, "refusals": refusals}


def text_only(outcomes: list[Outcome], min_probability: float) -> list[Outcome]:
    """The outcomes had the verifier not had the prompt vectors: the text-only model decides the eligible pairs."""
    return [
        dataclasses.replace(
            o, served=o.eligible and o.probability_text_only >= min_probability, probability=o.probability_text_only
        )
        for o in outcomes
    ]


def sweep(outcomes: list[Outcome]) -> list[dict[str, float]]:
    """Served and wrong shares across min_probability (what the one setting trades)."""
    genuine = [o for o in outcomes if is_genuine(o.pair)]
    look_alikes = [o for o in outcomes if is_look_alike(o.pair)]
    categories = sorted({o.pair.category for o in look_alikes})
    qqp = [o for o in outcomes if o.pair.file == "qqp_pairs_dev"]
    qqp_duplicates = max(sum(o.pair.same_answer for o in qqp), 1)
    points = []
    for p in PROBABILITY_SWEEP:

        def hit(o: Outcome, p: float = p) -> bool:
            return o.eligible and o.probability >= p

        qqp_served = [o for o in qqp if hit(o)]
        by_category = [[o for o in look_alikes if o.pair.category == c] for c in categories]
        worst = max((sum(map(hit, group)) / len(group) for group in by_category), default=0.0)
        points.append(
            {
                "min_probability": p,
                "served": sum(map(hit, genuine)) / max(len(genuine), 1),
                "wrong": sum(map(hit, look_alikes)) / max(len(look_alikes), 1),
                "worst_category_wrong": worst,
                "qqp_precision": sum(o.pair.same_answer for o in qqp_served) / max(len(qqp_served), 1),
                "qqp_recall": sum(o.pair.same_answer for o in qqp_served) / qqp_duplicates,
            }
        )
    return points


def print_sweep(points: list[dict[str, float]]) -> None:
    print("  min_probability -> genuine served / look-alikes served (worst category) / QQP precision, recall")
    for point in points[::5]:
        print(
            f"  {point['min_probability']:.2f}: {100 * point['served']:5.1f}% / {100 * point['wrong']:5.1f}%"
            f" ({100 * point['worst_category_wrong']:5.1f}%) / {point['qqp_precision']:.3f}, {point['qqp_recall']:.3f}"
        )


def cosine_only(outcomes: list[Outcome]) -> list[dict[str, float]]:
    """The baseline: a plain cosine threshold, no verifier."""
    genuine = [o for o in outcomes if is_genuine(o.pair)]
    look_alikes = [o for o in outcomes if is_look_alike(o.pair)]
    points = []
    for t in np.arange(0.70, 1.0001, 0.01):
        points.append(
            {
                "threshold": round(float(t), 2),
                "served": sum((o.similarity or 0) >= t for o in genuine) / max(len(genuine), 1),
                "wrong": sum((o.similarity or 0) >= t for o in look_alikes) / max(len(look_alikes), 1),
            }
        )
    return points


def chart(
    points: list[dict[str, float]],
    baseline: list[dict[str, float]],
    chosen: float,
    path: Path,
    text_points: list[dict[str, float]] | None = None,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5))
    ax.plot([100 * p["wrong"] for p in baseline], [100 * p["served"] for p in baseline], "o-", ms=3, color="grey",
            label="cosine threshold only (0.70-1.00)")  # fmt: skip
    ax.plot([100 * p["wrong"] for p in points], [100 * p["served"] for p in points], "o-", ms=3,
            label="verifier (with the prompt vectors), across min_probability")  # fmt: skip
    if text_points:
        ax.plot([100 * p["wrong"] for p in text_points], [100 * p["served"] for p in text_points], "o-",
                ms=3, color="tab:green", label="verifier on the texts alone, across min_probability")  # fmt: skip
    at = min(points, key=lambda p: abs(p["min_probability"] - chosen))
    ax.plot([100 * at["wrong"]], [100 * at["served"]], "r*", ms=14, label=f"default min_probability {chosen}")
    ax.axvline(2, color="red", lw=0.8, ls="--")
    ax.axhline(70, color="green", lw=0.8, ls="--")
    ax.set_xlabel("look-alikes served (wrong answers), % of held-out traps")
    ax.set_ylabel("paraphrases and near-repeats served, % of held-out traps")
    ax.set_title("Semantic cache: served against wrong (held-out split)")
    ax.set_xlim(-1, 60)
    ax.set_ylim(0, 101)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_outcomes(outcomes: list[Outcome], path: Path, http: bool = False) -> None:
    """One line per pair: its rows, whether b was served a's answer, the best candidate's similarity,
    the refusal reasons and the model's probability, to read which pairs went wrong and why."""
    with path.open("w") as f:
        for o in outcomes:
            row = {
                "file": o.pair.file,
                "category": o.pair.category,
                "a": o.pair.a,
                "b": o.pair.b,
                "same_answer": o.pair.same_answer,
                "served": o.served,
                "right": o.served == o.pair.same_answer,
                "similarity": None if o.similarity is None else round(o.similarity, 4),
                "refusals": o.refusals,
                "probability": None if http else round(o.probability, 3),  # over HTTP: not in the response
            }
            f.write(json.dumps(row) + "\n")
    print(f"wrote each pair's decision to {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", choices=("held-out", "train", "all"), default="held-out")
    parser.add_argument("--qqp-sample", type=int, default=2000, help="Quora pairs to run (0: all of the split)")
    parser.add_argument("--min-probability", type=float, default=None, help="the verifier's setting (default: model's)")
    parser.add_argument("--http", metavar="BASE_URL", help="send the pairs through a running gateway")
    parser.add_argument("--api-key", default="", help="with --http: a tenant key (make run prints one)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--pairs", type=Path, action="append", help="run this pair file whole, not the dev data")
    parser.add_argument("--out", type=Path, help="where summary and chart go (default eval/results; none with --pairs)")
    parser.add_argument(
        "--outcomes", type=Path, help="write each pair's decision here (JSON lines): what was served, why"
    )
    args = parser.parse_args()
    out: Path | None = args.out or (None if args.pairs else RESULTS)

    if args.pairs:
        pairs = [pair for path in args.pairs for pair in load(path)]
    else:
        pairs = load_pairs(args.split, args.qqp_sample or None)
    counts: dict[str, int] = defaultdict(int)
    for pair in pairs:
        counts[pair.file] += 1
    if args.pairs:
        print(f"your pair files, whole: {dict(counts)}")
    else:
        print(f"{args.split} split (trained and tuned on the other half), pairs: {dict(counts)}")
        print("Quora pairs: a fixed sample of the split" if args.qqp_sample else "Quora pairs: the whole split")
    model = CalibratedModel.load()
    if out:
        out.mkdir(exist_ok=True)
    if args.http:
        outcomes = asyncio.run(run_http(pairs, args.http, args.api_key, args.concurrency))
        if args.outcomes:  # served and the similarity, from the response headers; no refusal reasons
            write_outcomes(outcomes, args.outcomes, http=True)
        summary = summarize(outcomes)
        print("(http: latency is the whole request of b, upstream included on a miss)")
        if out:
            (out / "summary_http.json").write_text(json.dumps(summary, indent=2) + "\n")
            print(f"wrote {out / 'summary_http.json'}")
        return
    outcomes = asyncio.run(run_local(pairs, model, args.min_probability))
    if args.outcomes:
        write_outcomes(outcomes, args.outcomes)
    summary = summarize(outcomes)
    default = model.with_embeddings.default_min_probability if model.with_embeddings else model.default_min_probability
    chosen = args.min_probability if args.min_probability is not None else default
    summary["sweep"] = sweep(outcomes)
    summary["cosine_only"] = cosine_only(outcomes)
    summary["min_probability"] = chosen
    summary["split"] = "given pairs" if args.pairs else args.split
    print(f"\nacross the setting ({summary['split']}):")
    print_sweep(summary["sweep"])
    chosen_t = args.min_probability if args.min_probability is not None else model.default_min_probability
    print(
        f"\n--- the text-only model (what decides without both prompt vectors), min_probability {chosen_t};"
        " same candidates, latency not measured ---"
    )
    summary["text_only"] = summarize(text_only(outcomes, chosen_t), latency=False)
    text_points = sweep(text_only(outcomes, chosen_t))
    summary["text_only"]["sweep"] = text_points
    summary["text_only"]["min_probability"] = chosen_t
    print(f"across the setting ({summary['split']}), the text-only model:")
    print_sweep(text_points)
    if out:
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        chart(summary["sweep"], summary["cosine_only"], chosen, out / "served_vs_wrong.png", text_points)
        print(f"wrote {out / 'summary.json'} and {out / 'served_vs_wrong.png'}")


if __name__ == "__main__":
    main()
