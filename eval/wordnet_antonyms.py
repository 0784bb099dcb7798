"""Extract the single-word antonym pairs of WordNet 3.0 into the verifier's antonym lexicon.

The hit verifier refuses "how do I tighten X" for "how do I loosen X"; its handwritten list
(features.ANTONYMS) covers the words users type most, and this lexicon adds WordNet's direct
antonyms ("!" pointers between word senses) of adjectives, verbs and adverbs, less stopwords, and
the indirect antonyms of adjectives: each word similar to one end of a direct pair ("&" pointers:
"arid" to "dry") against the other end ("wet"), as WordNet's adjective clusters are meant to be
read. On the train half the indirect pairs refuse 1 more Quora duplicate of 3,730 and 5 more
non-duplicates, and no paraphrase pair (`python -m eval.hard_rules`). Words with a hyphen are left
out: the verifier's tokenizer splits them, so they could never match. Reads the
database files of Debian's `wordnet-base` package (`apt-get install wordnet-base`) and writes
services/cache_worker/verifier/antonyms.txt, one "word word" pair a line, sorted. WordNet 3.0 is
(c) Princeton University, under a BSD-style licence that allows redistribution with the notice
kept in the written file's first line.

    PYTHONPATH=. .venv/bin/python -m eval.wordnet_antonyms [--wordnet /usr/share/wordnet]
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from services.cache_worker.verifier.features import ANTONYM_FILE, STOPWORDS

# Nouns are left out: their antonyms ("question"/"answer", "father"/"mother") are topics, not opposites.
PARTS_OF_SPEECH = {"adj": ("a", "s"), "verb": ("v",), "adv": ("r",)}
_PLAIN_WORD = re.compile(r"^[a-z]+$")  # a hyphenated word never matches: the tokenizer splits it
NOTICE = (
    "# WordNet 3.0 direct and indirect antonyms."
    " WordNet 3.0 Copyright 2006 by Princeton University. All rights reserved."
)


def synsets(path: Path) -> dict[str, tuple[list[str], list[tuple[str, str, str, str]]]]:
    """offset -> (words, pointers) of one data.<pos> file (format: wndb(5WN))."""
    result = {}
    for line in path.open(encoding="latin-1"):
        if line.startswith("  "):  # the licence header
            continue
        fields = line.split(" | ")[0].split()
        word_count = int(fields[3], 16)
        synset_words = [re.sub(r"\(.*\)$", "", fields[4 + 2 * i]).lower() for i in range(word_count)]
        at = 4 + 2 * word_count
        pointer_count = int(fields[at])
        pointers = [tuple(fields[at + 1 + 4 * i : at + 5 + 4 * i]) for i in range(pointer_count)]
        result[fields[0]] = (synset_words, pointers)
    return result  # type: ignore[return-value]


def _plain(word: str) -> bool:
    return bool(_PLAIN_WORD.match(word)) and len(word) >= 4 and word not in STOPWORDS


def antonym_pairs(wordnet: Path) -> set[tuple[str, str]]:
    """Direct antonyms of adjectives, verbs and adverbs, and the indirect antonyms of adjectives."""
    pairs = set()
    for pos, codes in PARTS_OF_SPEECH.items():
        data = synsets(wordnet / f"data.{pos}")
        for synset_words, pointers in data.values():
            for symbol, target, target_pos, source_target in pointers:
                if symbol != "!" or target_pos not in codes:
                    continue
                source, other = int(source_target[:2], 16), int(source_target[2:], 16)
                a, b = synset_words[source - 1], data[target][0][other - 1]
                if _plain(a) and _plain(b) and a != b:
                    pairs.add((min(a, b), max(a, b)))
    return pairs | indirect_adjective_pairs(synsets(wordnet / "data.adj"))


def indirect_adjective_pairs(
    data: dict[str, tuple[list[str], list[tuple[str, str, str, str]]]],
) -> set[tuple[str, str]]:
    """Each word of a satellite synset against the words of its head's antonym synset."""
    pairs = set()
    for _, pointers in data.values():
        opposites = [target for symbol, target, _, _ in pointers if symbol == "!"]
        similar = [target for symbol, target, _, _ in pointers if symbol == "&"]
        for opposite in opposites:
            for satellite in similar:
                for a in data[satellite][0]:
                    for b in data[opposite][0]:
                        if _plain(a) and _plain(b) and a != b:
                            pairs.add((min(a, b), max(a, b)))
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wordnet", type=Path, default=Path("/usr/share/wordnet"))
    parser.add_argument("--out", type=Path, default=ANTONYM_FILE)
    args = parser.parse_args()
    pairs = sorted(antonym_pairs(args.wordnet))
    args.out.write_text("\n".join([NOTICE, *(f"{a} {b}" for a, b in pairs)]) + "\n")
    print(f"wrote {len(pairs)} pairs to {args.out}")


if __name__ == "__main__":
    main()
