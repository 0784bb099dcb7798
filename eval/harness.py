"""make eval: semantic match quality through the cache's real decision path.

For every pair {a, b, same_answer}: store `a` as the cache stores it, ask `b`, and see whether the
cache serves a's answer. Local mode (the default) runs the real pieces in-process: the embedder's
local model (all-MiniLM-L6-v2), PostgreSQL with pgvector (embedded) through the cache worker's
EntryStore, the partition keys of `keys.py` and the same `choose_candidate` as a lookup (similarity
pre-filter, the hit verifier, and for conversations the configured match). Each pair gets a namespace
of its own, so a pair is judged on its own. `--http` sends the pairs through a running gateway
instead (store a, wait until it is stored, ask b, read X-Cache).

Prints the share served of each should-hit category and the share of wrong answers of each
should-not category, with 95% Wilson intervals; the decision latency; and, across the verifier's
setting (min_probability), what each setting would serve. Writes eval/results/summary.json and a
chart of served against wrong (not with --pairs: your own files report only what they hold).

    make eval                                  # the project's pair sets (eval/data/pairs/)
    make eval PAIRS=my_pairs.jsonl             # your own file
    make eval-http API_KEY=lcp-...             # the same, through `make run`'s gateway
    PYTHONPATH=. .venv/bin/python -m eval.harness --shared   # the held-out half of ../shared/eval too
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from eval import report
from eval.dataset import Pair, load, project_sets, shared_held_out
from eval.report import Outcome
from services.cache_worker import keys
from services.cache_worker.keys import ConversationMatch

RESULTS = Path(__file__).resolve().parent / "results"
MODEL = "gpt-4o-mini"
TENANT = "eval"


def body_of(side: Any) -> dict[str, Any]:
    messages = side if isinstance(side, list) else [{"role": "user", "content": side}]
    return {"model": MODEL, "messages": messages}


def progress(done: int, total: int, started: float, label: str) -> None:
    rate = done / max(time.perf_counter() - started, 1e-9)
    eta = (total - done) / rate if rate else 0
    sys.stderr.write(f"\r  {label}: {done}/{total} ({rate:.0f}/s, {eta:.0f}s left)   ")
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()


# --- local mode: the real pieces in-process ------------------------------------------------------


async def run_local(
    pairs: list[Pair],
    verifier: Any,
    threshold: float,
    match: ConversationMatch,
) -> list[Outcome]:
    from scripts.stack import ROOT, start_embedded_postgres
    from services.cache_worker.entries import CachedAnswer
    from services.cache_worker.entry_store import EntryStore, NewEntry
    from services.cache_worker.settings import Settings
    from services.embedder.providers.onnx import OnnxEmbeddingProvider
    from shared.db import open_pool

    settings = Settings(database_url="postgresql://unused")
    print("starting embedded PostgreSQL (pgvector) and the embedder's model (ONNX)...", flush=True)
    postgres = start_embedded_postgres(ROOT / ".data" / "eval-postgres")
    pool = await open_pool(postgres.get_uri(), min_size=1, max_size=2, name="eval")
    provider = OnnxEmbeddingProvider(threads=1, cache_dir=ROOT / ".data" / "models")
    await provider.start()
    entries = EntryStore(pool, settings.hnsw_ef_search)
    await entries.ensure_schema()
    run_id = uuid.uuid4().hex[:8]
    outcomes = []
    try:
        prompts = sorted({embedded_text(body_of(side), match) for pair in pairs for side in (pair.a, pair.b)})
        vectors: dict[str, list[float]] = {}
        started = time.perf_counter()
        for i in range(0, len(prompts), 64):
            batch = prompts[i : i + 64]
            vectors.update(zip(batch, await provider.embed(batch), strict=True))
            progress(min(i + 64, len(prompts)), len(prompts), started, "embedding")
        started = time.perf_counter()
        for i, pair in enumerate(pairs):
            namespace = f"{run_id}-{i}"
            stored = body_of(pair.a)
            stored_prompt = keys.semantic_prompt(stored) or ""
            stored_history = keys.conversation(stored)
            answer = CachedAnswer(
                entry_id=str(uuid.uuid4()),
                exact_key=keys.exact_key(TENANT, namespace, stored),
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
                    prompt_text=stored_prompt,
                    partition_key=keys.partition_key(TENANT, namespace, stored, provider.model, match),
                    embedding_model=provider.model,
                    embedding=vectors[embedded_text(stored, match)],
                    turns=stored_history.stored_turns,
                )
            )
            outcomes.append(
                await decide_local(
                    pair,
                    entries,
                    verifier,
                    namespace,
                    provider.model,
                    vectors,
                    threshold,
                    match,
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


def embedded_text(body: dict[str, Any], match: ConversationMatch) -> str:
    """What the lookup embeds for a request (keys.Conversation.embedded, as Lookup._semantic calls it)."""
    return keys.conversation(body).embedded(keys.semantic_prompt(body) or "", match)


async def decide_local(
    pair: Pair,
    entries: Any,
    verifier: Any,
    namespace: str,
    embedding_model: str,
    vectors: dict[str, list[float]],
    threshold: float,
    match: ConversationMatch,
) -> Outcome:
    """One lookup's semantic decision, timed as in Lookup: the vector search and the verifier."""
    from services.cache_worker.lookup import choose_candidate

    asked = body_of(pair.b)
    prompt = keys.semantic_prompt(asked) or ""
    history = keys.conversation(asked)
    partition = keys.partition_key(TENANT, namespace, asked, embedding_model, match)
    started = time.perf_counter()
    candidates = await entries.nearest(partition, vectors[embedded_text(asked, match)], None, limit=5)
    checks = time.perf_counter()
    turns = (history.turns or ()) if match == "aligned" else None
    choice = await choose_candidate(candidates, prompt, threshold, verifier, turns, embedding_model)
    finished = time.perf_counter()
    outcome = Outcome(
        pair,
        choice.candidate is not None,
        candidates[0].similarity if candidates else None,
        finished - started,
        finished - checks if choice.verdicts else 0.0,
        choice.refusals,
    )
    if choice.verdicts:  # one candidate at most: each pair has a namespace of its own
        verdicts = choice.verdicts[0]
        if all(v.certain and v.accept for v in verdicts):
            outcome.certain = True
        elif not any(v.certain and not v.accept for v in verdicts):
            outcome.probability = min(v.score for v in verdicts if not v.certain)
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


def write_outcomes(outcomes: list[Outcome], path: Path) -> None:
    """One line per pair: its rows, whether b was served a's answer, why not, and the model's probability."""
    with path.open("w") as f:
        for o in outcomes:
            row = {
                "file": o.pair.file,
                "id": o.pair.id,
                "category": o.pair.category,
                "a": o.pair.a,
                "b": o.pair.b,
                "same_answer": o.pair.same_answer,
                "served": o.served,
                "right": o.served == o.pair.same_answer,
                "similarity": None if o.similarity is None else round(o.similarity, 4),
                "refusals": o.refusals,
                "probability": None if o.probability is None else round(o.probability, 4),
            }
            f.write(json.dumps(row) + "\n")
    print(f"wrote each pair's decision to {path}")


def build_local_verifier(args: argparse.Namespace) -> tuple[Any, float | None, str]:
    from services.cache_worker.verifier import ThresholdVerifier
    from services.cache_worker.verifier.cross_encoder import (
        MODEL_DIR,
        CrossEncoderVerifier,
        PairClassifier,
        default_min_probability,
        load_decision,
    )

    if args.verifier == "threshold":
        return ThresholdVerifier(), None, "threshold (the similarity alone)"
    directory = args.model_dir or MODEL_DIR
    classifier = PairClassifier.load(directory)
    min_probability = args.min_probability
    if min_probability is None:
        min_probability = default_min_probability(directory)
    return (
        CrossEncoderVerifier(classifier, min_probability, decision=load_decision(directory)),
        min_probability,
        f"cross_encoder, min_probability {min_probability}",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=Path, action="append", help="run this pair file (repeatable)")
    parser.add_argument("--shared", action="store_true", help="add the held-out half of ../shared/eval")
    parser.add_argument("--qqp-sample", type=int, default=2000, help="with --shared: Quora pairs to run")
    parser.add_argument("--verifier", choices=("cross_encoder", "threshold"), default="cross_encoder")
    parser.add_argument("--min-probability", type=float, default=None, help="the verifier's setting (default: model's)")
    parser.add_argument("--model-dir", type=Path, help="another classifier (default: the shipped one)")
    parser.add_argument("--threshold", type=float, default=None, help="similarity pre-filter (default: the setting's)")
    parser.add_argument("--conversation-match", choices=("exact", "aligned"), default="aligned")
    parser.add_argument("--http", metavar="BASE_URL", help="send the pairs through a running gateway")
    parser.add_argument("--api-key", default="", help="with --http: a tenant key (make run prints one)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--out", type=Path, help="summary and chart go here (default eval/results; none with --pairs)")
    parser.add_argument("--outcomes", type=Path, help="write each pair's decision here (JSON lines)")
    args = parser.parse_args()
    out: Path | None = args.out or (None if args.pairs else RESULTS)

    paths = args.pairs or project_sets()
    pairs = [pair for path in paths for pair in load(path)]
    if args.shared:
        pairs += shared_held_out(args.qqp_sample or None)
    if not pairs:
        sys.exit("no pairs: eval/data/pairs/ is empty; give --pairs FILE or --shared")
    print(
        f"pairs: {len(pairs)} from {', '.join(p.name for p in paths)}"
        + (" and ../shared/eval (held out)" if args.shared else "")
    )

    if args.http:
        outcomes = asyncio.run(run_http(pairs, args.http, args.api_key, args.concurrency))
        setting = "through the gateway (its own settings)"
        min_probability = None
    else:
        from services.cache_worker.settings import Settings

        verifier, min_probability, setting = build_local_verifier(args)
        threshold = (
            args.threshold
            if args.threshold is not None
            else Settings(database_url="postgresql://unused", verifier=args.verifier).prefilter
        )
        setting += f"; pre-filter {threshold}; conversations: {args.conversation_match} match"
        print(f"verifier: {setting}")
        outcomes = asyncio.run(run_local(pairs, verifier, threshold, args.conversation_match))
    if args.outcomes:
        write_outcomes(outcomes, args.outcomes)
    rows = report.table(outcomes)
    report.print_table(rows)
    summary: dict[str, Any] = {"setting": setting, "pairs": [p.name for p in paths], "table": rows}
    timing = report.latency(outcomes)
    summary["latency"] = timing
    if args.http:
        print(
            f"\nlatency: the request of b p50 {timing['decision_ms_p50']:.1f} ms,"
            f" p99 {timing['decision_ms_p99']:.1f} ms"
        )
    else:
        print()
        for kind, subset in (
            ("questions", [o for o in outcomes if not isinstance(o.pair.a, list)]),
            ("conversations", [o for o in outcomes if isinstance(o.pair.a, list)]),
        ):
            if not subset:
                continue
            part = summary[f"latency_{kind}"] = report.latency(subset)
            print(
                f"latency, {kind}: decision (vector search + verifier) p50 {part['decision_ms_p50']:.2f} ms,"
                f" p99 {part['decision_ms_p99']:.2f} ms; verifier p50 {part['verifier_ms_p50']:.2f} ms,"
                f" p99 {part['verifier_ms_p99']:.2f} ms"
            )
        refusals: dict[str, int] = {}
        for o in outcomes:
            for reason in o.refusals:
                refusals[reason] = refusals.get(reason, 0) + 1
        print("refused candidates by reason: " + ", ".join(f"{k} {v}" for k, v in sorted(refusals.items())))
        summary["refusals"] = refusals
        if min_probability is not None:
            points = report.sweep(outcomes)
            summary["sweep"] = points
            summary["min_probability"] = min_probability
            print("\nacross the setting:")
            report.print_sweep(points)
    if out:
        out.mkdir(parents=True, exist_ok=True)
        name = "summary_http.json" if args.http else "summary.json"
        (out / name).write_text(json.dumps(summary, indent=2) + "\n")
        if "sweep" in summary:
            report.chart(summary["sweep"], report.cosine_only(outcomes), summary["min_probability"],
                         out / "served_vs_wrong.png", "Semantic cache: served against wrong")  # fmt: skip
        print(f"wrote {out / name}")


if __name__ == "__main__":
    main()
