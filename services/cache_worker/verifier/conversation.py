"""Two conversations compared turn by turn: which pairs of texts the hit verifier must accept before a
stored conversation's answer may serve another (`CONVERSATION_MATCH=aligned`).

The earlier turns are aligned first (same role, most words in common, order kept), so that what one
chat has and the other lacks, or says otherwise, is found wherever it is:

- a turn equal to its counterpart (once normalized) asks nothing;
- a turn **replaced** by another in the same place (a different offer, amount, city, situation, or
  the same said in other words) is judged like a question against it, at the verifier's own
  threshold: a different offer is a different situation. The same words in another order are
  refused outright: options offered in another order make "the second one" another choice, and the
  classifier, trained on questions (where "A or B?" asks what "B or A?" does), reads them as equal;
- a turn **inserted** on one side only (a greeting, thanks, small talk, an earlier exchange) is
  folded in front of that side's last question and judged against the question alone: does it change
  what is asked? Never served when the exact checks find a number or code in it that the question
  lacks. An assistant's turn too: its reply to small talk folded in front of the question often
  reads as another question and is refused (a greeting exchange more costs some hits), but judging
  the reply only through the user turn it answers let turns that add a fact ("we're going to
  Whistler") through on a blind set that tests it (2 of 50 against 0; README).

The last questions themselves are judged like any two prompts, and every pair at the verifier's one
operating point. (A lower bar for inserted turns served more small talk, and, on a blind set of turns
that add a fact, far more wrong answers: 18% at 0.1, 4% at 0.5, none at 0.7; README.) Nothing here
knows a word list: the learned verifier reads every pair.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from services.cache_worker.verifier.base import PromptPair
from services.cache_worker.verifier.text import normalized

Turn = tuple[str, str]  # (role, text)

# The alignment compares every turn of one chat with every turn of the other: two chats of more turns
# than this between them (40 and 40) are not compared at all (refused), so that a request of thousands
# of messages costs a lookup nothing. Such chats still hit the exact cache when sent again unchanged.
MAX_ALIGNED_CELLS = 1600


@dataclass(frozen=True)
class TurnPairs:
    """The pairs one stored conversation needs accepted, in order: the last questions first; or the
    reason it is refused without them."""

    pairs: list[PromptPair]
    kinds: list[str]  # per pair: "prompt", "replaced" or "inserted" (a refusal's reason says which)
    refusal: str | None = None


@lru_cache(maxsize=512)
def words(text: str) -> tuple[str, ...]:
    """A turn's normalized words (cached: the asked chat's turns are compared with every candidate's)."""
    return tuple(normalized(text).split())


def aligned(stored: Sequence[Turn], asked: Sequence[Turn]) -> list[tuple[int | None, int | None]]:
    """The two histories side by side: (stored index, asked index), None on the side a turn is missing.

    Needleman-Wunsch over turns: two turns of the same role may face each other (scoring 1 plus the share
    of their distinct words in common), a turn facing nothing scores 0. Facing is always worth more than a
    gap, so a replaced turn faces its replacement and only a turn one side lacks faces nothing.
    """
    sets_s = [frozenset(words(text)) for _, text in stored]
    sets_a = [frozenset(words(text)) for _, text in asked]
    n, m = len(stored), len(asked)

    def facing(i: int, j: int) -> float | None:
        if stored[i][0] != asked[j][0]:
            return None
        union = len(sets_s[i] | sets_a[j])
        return 1.0 + (len(sets_s[i] & sets_a[j]) / union if union else 1.0)

    scores = [[facing(i, j) for j in range(m)] for i in range(n)]
    best = [[0.0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            score = scores[i][j]
            paired = best[i + 1][j + 1] + score if score is not None else float("-inf")
            best[i][j] = max(best[i + 1][j], best[i][j + 1], paired)
    steps: list[tuple[int | None, int | None]] = []
    i = j = 0
    while i < n and j < m:
        score = scores[i][j]
        if score is not None and best[i][j] == best[i + 1][j + 1] + score:
            steps.append((i, j))
            i, j = i + 1, j + 1
        elif best[i][j] == best[i + 1][j]:
            steps.append((i, None))
            i += 1
        else:
            steps.append((None, j))
            j += 1
    steps += [(k, None) for k in range(i, n)] + [(None, k) for k in range(j, m)]
    return steps


def turn_pairs(
    stored_prompt: str,
    asked_prompt: str,
    stored_turns: Sequence[Turn],
    asked_turns: Sequence[Turn],
    similarity: float | None,
    embedding_model: str | None,
) -> TurnPairs:
    """The last questions' pair, then one pair per replaced turn and per inserted turn.

    `similarity` is the last questions' cosine only when neither side has earlier turns (it is then what
    the vector search measured); with a history it is the conversations' and the pairs go without one.
    """
    if len(stored_turns) * len(asked_turns) > MAX_ALIGNED_CELLS:
        return TurnPairs([], [], refusal="conversation_too_long")
    plain = not stored_turns and not asked_turns
    pairs = [PromptPair(asked_prompt, stored_prompt, similarity if plain else None, embedding_model)]
    kinds = ["prompt"]
    for i, j in aligned(stored_turns, asked_turns):
        if i is not None and j is not None:
            stored_words, asked_words = words(stored_turns[i][1]), words(asked_turns[j][1])
            if stored_words == asked_words:
                continue
            if Counter(stored_words) == Counter(asked_words):
                return TurnPairs([], [], refusal="replaced_reordered")
            pairs.append(PromptPair(asked_turns[j][1], stored_turns[i][1]))
            kinds.append("replaced")
            continue
        # A turn only one side has, folded in front of that side's question: does it change what is asked?
        if i is not None:
            text, question = stored_turns[i][1], stored_prompt
        else:
            assert j is not None
            text, question = asked_turns[j][1], asked_prompt
        pairs.append(PromptPair(f"{text} {question}", question))
        kinds.append("inserted")
    return TurnPairs(pairs, kinds)
