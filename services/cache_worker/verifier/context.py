"""What must agree in two conversations' earlier turns before their last questions may share an answer.

The context similarity alone cannot see the detail an answer turns on: "A rectangle is 8 cm by 5 cm"
and "... 8 cm by 6 cm" score 0.99, "my flight is refundable" and "... is not refundable" 0.99, and
the same follow-up ("What's its perimeter?") then has another answer. So the hard rules that refuse
a look-alike question (numbers, negation, a thing left out, code symbols, an added qualifying
phrase, and a swapped name, antonym, scope word or unit when that is the whole difference) apply to
the earlier turns as well, as the cache keeps them (the most recent 1,500 characters: what is
embedded). They only refuse: a reworded history ("My laptop won't turn on" / "my laptop does not
power on") passes.
"""

from __future__ import annotations

from services.cache_worker.verifier.calibrated import HARD_RULES, SMALL_DIFFERENCE, hard_refusal
from services.cache_worker.verifier.features import facts, must_agree, pair_features

# Past this many differing content words (before typos and word families are matched) no swap rule
# can apply (they need at most SMALL_DIFFERENCE, an antonym at most WIDE_DIFFERENCE): only numbers,
# negation, exclusion and code are compared, which spares matching every word against every other
# in two long, reworded histories.
FAR_APART = 4 * SMALL_DIFFERENCE


def context_disagreement(query_context: str, candidate_context: str) -> str | None:
    """Why the two histories cannot share an answer (`context_<rule>`), or None when nothing that must agree differs."""
    if query_context == candidate_context:
        return None
    query, candidate = facts(query_context), facts(candidate_context)
    if len(query.content ^ candidate.content) > FAR_APART:
        signals = must_agree(query, candidate)
        rule = next((rule for rule in HARD_RULES if signals.get(rule)), None)
    else:
        # The similarity and word weights only feed the model, which does not judge histories: rules only.
        rule = hard_refusal(pair_features(query_context, candidate_context, similarity=1.0))
    return None if rule is None else f"context_{rule}"
