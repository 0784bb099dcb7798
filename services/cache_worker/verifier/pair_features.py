"""What the verifier's decision reads about a pair besides the classifier: how far apart the two prompts are.

The pair classifier reads the meaning; it is unsure about a question typed again with a typo or a
split word ("powerbank" / "power bank"), which differs on the surface as a look-alike does. These
numbers say how the prompts differ: the share of words only one side has, how many of those are a
misspelling of a word on the other side (a close spelling, not another word), how many moved
(both sides have them, in another order: two roles swapped), the character overlap with and
without spaces, and the cosine of the embeddings the vector search measured. The
decision (`trees.py`, fitted by eval/fit_decision.py) weighs them together with the classifier's
score. No word lists: nothing here knows a language beyond "words are runs of letters and digits".
"""

from __future__ import annotations

import math
import re
from collections import Counter
from difflib import SequenceMatcher

from services.cache_worker.verifier.pair_input import aligned

FEATURE_NAMES = (
    "classifier_logit",  # the pair classifier's calibrated probability, as a logit
    "similarity",  # cosine of the two prompts' embeddings (the vector search's)
    "character_ratio",  # character overlap of the words outside the alignment (difflib ratio)
    "joined_ratio",  # the same with the spaces removed: "power bank" and "powerbank" are one spelling
    "stored_only_share",  # words of the stored prompt the asked one does not have, in order
    "asked_only_share",  # words of the asked prompt the stored one does not have
    "unexplained_share",  # of those, the ones neither moved nor a misspelling of a word on the other side
    "misspelled_share",  # pairs of them that are one word misspelt (two different spellings)
    "log_words",  # log of the longer prompt's word count
    "length_gap",  # difference of the word counts, as a share of the longer
    "moved_share",  # words both sides have, out of the alignment on both: "a doctor ... a patient" swapped
)

# Scripts written without spaces (Chinese, Japanese kana, Thai) count one character a word, as BERT's
# tokenizer does: else a whole sentence is one "word", and another city in it reads as a misspelling.
_UNSPACED = "\u0e00-\u0e7f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_WORD = re.compile(rf"[{_UNSPACED}]|[^\W{_UNSPACED}]+(?:['\u2019.][^\W{_UNSPACED}]+)*")
# Two words are one word misspelt when their characters overlap this much (difflib's ratio):
# "subscrption"/"subscription" 0.96, "morgage"/"mortgage" 0.93, "on"/"off" 0.5, "Paris"/"Vienna" 0.18.
MISSPELLING_RATIO = 0.8
# Pairing the words only one side has costs a comparison per pair of them: a rewording can have
# dozens, and it is not a misspelling anyway.
_MAX_PAIRED_WORDS = 12
# difflib's matching is quadratic: every input is bounded, so a 4 MB prompt costs what a long question
# does (the classifier reads 128 tokens of both prompts anyway). A "word" longer than _MAX_WORD_CHARS
# is nobody's misspelling.
_MAX_WORDS = 160
_MAX_CHARS = 300
_MAX_WORD_CHARS = 30


def features(stored: str, asked: str, probability: float, similarity: float) -> list[float]:
    """The numbers of FEATURE_NAMES, in that order, for one (stored, asked) pair."""
    words_stored, words_asked = _words(stored), _words(asked)
    only_stored, only_asked = _unaligned(words_stored, words_asked)
    moved = Counter(only_stored) & Counter(only_asked)
    rest_stored = list((Counter(only_stored) - moved).elements())
    rest_asked = list((Counter(only_asked) - moved).elements())
    misspelled = _misspelled(rest_stored, rest_asked)
    longest = max(len(words_stored), len(words_asked), 1)
    p = min(max(probability, 1e-4), 1 - 1e-4)
    return [
        math.log(p / (1 - p)),
        similarity,
        _ratio(" ".join(only_stored)[:_MAX_CHARS], " ".join(only_asked)[:_MAX_CHARS]),
        _ratio("".join(only_stored)[:_MAX_CHARS], "".join(only_asked)[:_MAX_CHARS]),
        len(only_stored) / longest,
        len(only_asked) / longest,
        (len(rest_stored) + len(rest_asked) - 2 * misspelled) / longest,
        misspelled / longest,
        math.log(longest),
        abs(len(words_stored) - len(words_asked)) / longest,
        sum(moved.values()) / longest,
    ]


def _words(text: str) -> list[str]:
    """The first _MAX_WORDS words, case-folded."""
    words = []
    for match in _WORD.finditer(text):
        words.append(match.group().casefold())
        if len(words) == _MAX_WORDS:
            break
    return words


def _ratio(a: str | list[str], b: str | list[str]) -> float:
    """difflib's similarity ratio (1.0 for two empty inputs)."""
    return SequenceMatcher(None, a, b, autojunk=False).ratio()


def _unaligned(a: list[str], b: list[str]) -> tuple[list[str], list[str]]:
    """The words of each side outside the word-level alignment the classifier's input marks too."""
    kept_a, kept_b = aligned(a, b)
    return [w for i, w in enumerate(a) if i not in kept_a], [w for i, w in enumerate(b) if i not in kept_b]


def _misspelled(only_a: list[str], only_b: list[str]) -> int:
    """How many words of `only_a` are a close spelling of a word of `only_b` (greedy pairing; the
    words both have were taken out before as moved)."""
    if len(only_a) > _MAX_PAIRED_WORDS or len(only_b) > _MAX_PAIRED_WORDS:
        return 0
    left = [word for word in only_b if len(word) <= _MAX_WORD_CHARS]
    paired = 0
    for word in (w for w in only_a if len(w) <= _MAX_WORD_CHARS):
        if not left:
            break
        ratios = [_ratio(word, other) for other in left]
        best = max(range(len(left)), key=ratios.__getitem__)
        if ratios[best] >= MISSPELLING_RATIO:
            paired += 1
            del left[best]
    return paired
