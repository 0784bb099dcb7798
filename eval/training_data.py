"""The verifier's training pairs: hand-written clusters, the train half of the development data, and
pairs made from both by code (eval/perturb.py).

A cluster (eval/data/train/clusters_*.jsonl) is one user message, three rewordings with the same
meaning, and four look-alikes (negation, scope, entity, number) written by hand. From each:
- positives: the message against each rewording, rewordings against each other, and any of them
  typed again with surface noise (typos, casing, fillers, greetings, politeness...);
- negatives: the message and its rewordings against each look-alike (so a changed fact hides among
  rewording, as users write), look-alikes typed with noise, and code-made changes of one fact
  (a number, a negation, a direction, a name, a qualifier) of the message and of its rewordings;
  and the nearest message of another cluster of the same domain (another question on the topic).
The train half of ../shared/eval (when it is beside the project: paraphrase pairs, Quora pairs,
trap pairs) adds its labelled pairs and seeds more code-made pairs.

Every choice is drawn from a random generator seeded by the pair's group (its cluster or source
row), so the same files give the same pairs on every machine. Groups, not pairs, are split into
train and dev, so no rewording of a dev message is trained on.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from eval import perturb

CLUSTERS_DIR = Path(__file__).resolve().parent / "data" / "train"
# Clusters nearly equal to a pair of an evaluation set (eval/decontaminate.py): never trained on.
EXCLUDED = CLUSTERS_DIR / "excluded.json"
SEED = "llmcache-cross-encoder-1"
DEV_SHARE = 0.08


@dataclass(frozen=True)
class TrainPair:
    """Store `a`, ask `b`: label 1 when one answer serves both."""

    a: str
    b: str
    label: int
    kind: str  # how the pair was made: "reworded", "typo+greeting", "look_alike:scope", "code:number", ...
    group: str  # the cluster or source row it came from: the unit of the train/dev split


def rng_for(*parts: str) -> random.Random:
    return random.Random(hashlib.sha256("\x00".join((SEED, *parts)).encode()).digest())


def _share(name: str) -> float:
    return int(hashlib.sha256(f"{SEED}\x00share\x00{name}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def is_dev(group: str) -> bool:
    return int(hashlib.sha256(f"{SEED}\x00split\x00{group}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < DEV_SHARE


def load_clusters(directory: Path | None = None, include_excluded: bool = False) -> list[dict]:
    excluded = set()
    if EXCLUDED.is_file() and not include_excluded:
        excluded = set(json.loads(EXCLUDED.read_text())["clusters"])
    clusters = []
    for path in sorted((directory or CLUSTERS_DIR).glob("clusters_*.jsonl")):
        for line in path.read_text().splitlines():
            if line.strip():
                cluster = json.loads(line)
                if cluster["id"] not in excluded:
                    clusters.append(cluster)
    return clusters


def _noisy(text: str, rng: random.Random) -> str:
    return perturb.surface_noise(text, rng)


def _code_negatives(group: str, texts: list[str], rng: random.Random, count: int) -> Iterator[TrainPair]:
    """Up to `count` pairs (original, the same text or a rewording with one fact changed by code)."""
    original = texts[0]
    kinds = [k for k in perturb.CHANGES if k != "scope"]
    rng.shuffle(kinds)
    # An appended qualifier fits any text: tried last, so the changes that need something to change come first.
    kinds.insert(rng.randrange(len(kinds) + 1) if rng.random() < 0.3 else len(kinds), "scope")
    made = 0
    for kind in kinds:
        if made == count:
            return
        source = rng.choice(texts)
        changed = perturb.CHANGES[kind](source, rng)
        if changed is None or changed.strip().lower() == source.strip().lower():
            continue
        if rng.random() < 0.25:
            changed = _noisy(changed, rng)  # a look-alike typed carelessly is still a look-alike
        yield _ordered(original, changed, 0, f"code:{kind}", group, rng)
        made += 1


def _ordered(a: str, b: str, label: int, kind: str, group: str, rng: random.Random) -> TrainPair:
    """Either side may be the stored one."""
    return TrainPair(a, b, label, kind, group) if rng.random() < 0.5 else TrainPair(b, a, label, kind, group)


def cluster_pairs(cluster: dict) -> Iterator[TrainPair]:
    group = f"cluster:{cluster['id']}"
    rng = rng_for(group)
    text: str = cluster["text"]
    same: list[str] = list(cluster["same"])
    different: list[dict] = list(cluster["different"])
    texts = [text, *same]
    # Positives: rewordings, and the same words typed again.
    for s in same:
        yield _ordered(text, s, 1, "reworded", group, rng)
    for i in range(len(same)):
        for j in range(i + 1, len(same)):
            yield _ordered(same[i], same[j], 1, "reworded", group, rng)
    for _ in range(3):
        source = rng.choice(texts)
        yield _ordered(source, _noisy(source, rng), 1, "noise", group, rng)
    yield _ordered(text, _noisy(rng.choice(same), rng), 1, "reworded+noise", group, rng)
    # Negatives: the hand-written look-alikes, against the message and against its rewordings.
    for look_alike in different:
        kind = f"look_alike:{look_alike['kind']}"
        yield _ordered(text, look_alike["text"], 0, kind, group, rng)
        yield _ordered(rng.choice(same), look_alike["text"], 0, kind, group, rng)
        if rng.random() < 0.4:
            yield _ordered(rng.choice(texts), _noisy(look_alike["text"], rng), 0, kind + "+noise", group, rng)
    yield from _code_negatives(group, texts, rng, 3)
    yield from _order_pairs(group, texts, rng)


def _order_pairs(group: str, texts: list[str], rng: random.Random) -> Iterator[TrainPair]:
    """Every text whose order is the question, against itself with two things swapped (a look-alike),
    and every text whose order is not, against itself swapped (the same question)."""
    for source in texts:
        swapped = perturb.order_swap(source, rng)
        if swapped is not None and swapped.casefold() != source.casefold():
            yield _ordered(source, swapped, 0, "code:order", group, rng)
        same = perturb.symmetric_swap(source, rng)
        if same is not None and same.casefold() != source.casefold():
            yield _ordered(source, same, 1, "symmetric", group, rng)


def labelled_pairs(rows: Iterable[tuple[str, str, bool, str, str]]) -> Iterator[TrainPair]:
    """Pairs with a label already (a, b, same_answer, kind, group), and code-made pairs seeded from them."""
    for a, b, same, kind, group in rows:
        rng = rng_for(group)
        yield TrainPair(a, b, int(same), kind, group)
        if rng.random() < 0.5:
            source = rng.choice((a, b))
            yield _ordered(source, _noisy(source, rng), 1, "noise", group, rng)
        if rng.random() < 0.5:
            yield from _code_negatives(group, [a] + ([b] if same else []), rng, 1)
        yield from _order_pairs(group, [a] + ([b] if same else []), rng)


def shared_rows() -> list[tuple[str, str, bool, str, str]]:
    """The train half of ../shared/eval's single-question files, when it is beside the project."""
    from eval.dataset import DATA_DIR, load, split

    rows = []
    for name in ("traps_dev.jsonl", "paraphrase_pairs.jsonl", "qqp_pairs_dev.jsonl"):
        path = DATA_DIR / name
        if not path.is_file():
            continue
        train, _ = split(load(path))
        for pair in train:
            if isinstance(pair.a, str) and isinstance(pair.b, str):
                rows.append(
                    (pair.a, pair.b, pair.same_answer, f"{pair.file}:{pair.category}", f"{pair.file}:{pair.id}")
                )
    return rows


def neighbour_negatives(clusters: list[dict], embed) -> Iterator[TrainPair]:
    """Each cluster's message against the nearest message of another cluster in its domain: another
    question on the same topic (`embed`: texts -> unit vectors)."""
    import numpy as np

    by_domain: dict[str, list[dict]] = {}
    for cluster in clusters:
        by_domain.setdefault(cluster.get("domain", ""), []).append(cluster)
    for members in by_domain.values():
        if len(members) < 2:
            continue
        vectors = np.asarray(embed([c["text"] for c in members]), dtype=np.float32)
        similarity = vectors @ vectors.T
        np.fill_diagonal(similarity, -1.0)
        for i, cluster in enumerate(members):
            j = int(similarity[i].argmax())
            group = f"cluster:{cluster['id']}"
            yield _ordered(cluster["text"], members[j]["text"], 0, "neighbour", group, rng_for(group, "neighbour"))


def build(embed=None, use_shared: bool = True, cluster_share: float = 1.0) -> tuple[list[TrainPair], list[TrainPair]]:
    """(train, dev) pairs, deduplicated, in a fixed shuffled order (`cluster_share`: a fixed part of the clusters)."""
    clusters = [c for c in load_clusters() if cluster_share >= 1 or _share(c["id"]) < cluster_share]
    pairs: list[TrainPair] = []
    for cluster in clusters:
        pairs += cluster_pairs(cluster)
    if embed is not None:
        pairs += neighbour_negatives(clusters, embed)
    if use_shared:
        pairs += labelled_pairs(shared_rows())
    seen: set[tuple[str, str]] = set()
    unique = []
    for pair in pairs:
        key = (pair.a.strip().lower(), pair.b.strip().lower())
        if pair.a.strip() == pair.b.strip() or key in seen:
            continue
        seen.add(key)
        unique.append(pair)
    rng_for("order").shuffle(unique)
    train = [p for p in unique if not is_dev(p.group)]
    dev = [p for p in unique if is_dev(p.group)]
    return train, dev


def describe(pairs: list[TrainPair]) -> dict[str, int]:
    counts = Counter(f"{p.label}:{p.kind.split(':')[0] if p.kind.startswith('qqp') else p.kind}" for p in pairs)
    return dict(sorted(counts.items()))


if __name__ == "__main__":
    train, dev = build()
    print(f"train {len(train)}, dev {len(dev)}")
    for key, n in describe(train).items():
        print(f"  {key}: {n}")
