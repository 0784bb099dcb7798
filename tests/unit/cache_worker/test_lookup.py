"""Choosing among the nearest candidates: the pre-filter, the conversation context, and what the verifier sees."""

from __future__ import annotations

from services.cache_worker.entries import CachedAnswer
from services.cache_worker.entry_store import Candidate
from services.cache_worker.lookup import Choice, choose_candidate
from services.cache_worker.verifier import HitVerifier, Verdict
from services.cache_worker.verifier.base import PromptVectors


class Recording(HitVerifier):
    """Accepts the stored prompts it is told to, and records the vectors it was given."""

    def __init__(self, accept: set[str]) -> None:
        self.accept = accept
        self.seen: list[tuple[str, PromptVectors | None]] = []

    async def verify(
        self, query: str, candidate: str, similarity: float, vectors: PromptVectors | None = None
    ) -> Verdict:
        self.seen.append((candidate, vectors))
        return Verdict(candidate in self.accept, similarity, None if candidate in self.accept else "differing_words")


def candidate(
    prompt: str,
    similarity: float,
    embedding: list[float] | None = None,
    context: tuple[str | None, float] | None = None,  # a stored conversation's earlier turns, and their similarity
) -> Candidate:
    answer = CachedAnswer(entry_id=prompt, exact_key=prompt, model="m", completion={}, created_at=0.0)
    context_text, context_similarity = context if context is not None else (None, None)
    return Candidate(
        answer,
        similarity,
        context_similarity=context_similarity,
        prompt_text=prompt,
        context_text=context_text,
        embedding=embedding,
    )


async def test_the_verifier_gets_both_prompt_vectors() -> None:
    verifier = Recording(accept={"second"})
    found = [candidate("first", 0.95, [1.0, 0.0]), candidate("second", 0.9, [0.0, 1.0])]
    choice = await choose_candidate(found, "query", 0.7, verifier, vector=[0.6, 0.8])
    assert choice.candidate is found[1] and choice.refusals == ["differing_words"]
    assert verifier.seen == [("first", ([0.6, 0.8], [1.0, 0.0])), ("second", ([0.6, 0.8], [0.0, 1.0]))]


async def test_without_a_vector_the_verifier_decides_on_the_texts() -> None:
    verifier = Recording(accept={"stored"})
    choice = await choose_candidate([candidate("stored", 0.9)], "query", 0.7, verifier, vector=[1.0, 0.0])
    assert choice.candidate is not None and verifier.seen == [("stored", None)]


async def test_candidates_below_the_pre_filter_never_reach_the_verifier() -> None:
    verifier = Recording(accept={"stored"})
    choice = await choose_candidate([candidate("stored", 0.5, [1.0])], "query", 0.7, verifier, vector=[1.0])
    assert choice.candidate is None and verifier.seen == []


class Broken(HitVerifier):
    async def verify(
        self, query: str, candidate: str, similarity: float, vectors: PromptVectors | None = None
    ) -> Verdict:
        raise ValueError("bad input")


async def test_a_failing_verifier_refuses_instead_of_failing_the_lookup() -> None:
    choice = await choose_candidate([candidate("stored", 0.99)], "query", 0.7, Broken())
    assert choice.candidate is None and choice.refusals == ["verifier_error"]


RECTANGLE = "user: A rectangle is 8 cm long and {} cm wide.\nassistant: Okay."


async def test_in_a_conversation_the_earlier_turns_must_be_near_and_agree() -> None:
    verifier = Recording(accept={"What's its perimeter?"})
    near_but_other = candidate("What's its perimeter?", 1.0, context=(RECTANGLE.format(5), 0.99))
    choice = await choose_candidate(
        [near_but_other], "What's its perimeter?", 0.7, verifier, 0.85, None, RECTANGLE.format(6)
    )
    assert choice.candidate is None and choice.refusals == ["context_number_mismatch"] and verifier.seen == []

    far = candidate("What's its perimeter?", 1.0, context=(RECTANGLE.format(6), 0.5))
    choice = await choose_candidate([far], "What's its perimeter?", 0.7, verifier, 0.85, None, RECTANGLE.format(6))
    assert choice.refusals == ["conversation_context"]

    same = candidate("What's its perimeter?", 1.0, context=(RECTANGLE.format(6), 0.99))
    choice = await choose_candidate([same], "What's its perimeter?", 0.7, verifier, 0.85, None, RECTANGLE.format(6))
    assert choice.candidate is same


async def ask_after(found: Candidate, history: str) -> Choice:
    """Ask "What's its perimeter?" after `history`, with a verifier that accepts that prompt."""
    return await choose_candidate(
        [found], "What's its perimeter?", 0.7, Recording(accept={"What's its perimeter?"}), 0.85, None, history
    )


async def test_an_entry_stored_without_its_history_text_is_not_served_in_a_conversation() -> None:
    older = candidate("What's its perimeter?", 1.0, context=(None, 0.99))
    choice = await ask_after(older, RECTANGLE.format(5))
    assert choice.candidate is None and choice.refusals == ["context_unknown"]


async def test_a_failing_conversation_check_refuses_instead_of_failing_the_lookup(monkeypatch) -> None:
    def broken(query: str, candidate: str) -> str | None:
        raise ValueError("bad input")

    monkeypatch.setattr("services.cache_worker.lookup.context_disagreement", broken)
    same = candidate("What's its perimeter?", 1.0, context=(RECTANGLE.format(6), 0.99))
    choice = await ask_after(same, RECTANGLE.format(6) + "!")
    assert choice.candidate is None and choice.refusals == ["verifier_error"]


def test_a_pair_is_named_by_tenant_entry_question_and_history() -> None:
    from services.cache_worker.feedback import pair_hash

    base = pair_hash("acme", "key", "Why is the sky blue?", None)
    assert base == pair_hash("acme", "key", "Why is the sky blue?", None)
    others = {
        pair_hash("other", "key", "Why is the sky blue?", None),
        pair_hash("acme", "key2", "Why is the sky blue?", None),
        pair_hash("acme", "key", "Why is the sky grey?", None),
        pair_hash("acme", "key", "Why is the sky blue?", "user: hi"),
    }
    assert base not in others and len(others) == 4
