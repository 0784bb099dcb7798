"""Choosing among the nearest candidates: the pre-filter, what the verifier reads, and earlier turns."""

from __future__ import annotations

import time
from collections.abc import Sequence

from services.cache_worker.entries import CachedAnswer, PendingStore
from services.cache_worker.entry_store import Candidate
from services.cache_worker.exact_store import LEADING
from services.cache_worker.lookup import Hit, Lookup, LookupPolicy, Miss, choose_candidate
from services.cache_worker.verifier import HitVerifier, PromptPair, ThresholdVerifier, Verdict
from shared.contracts.completions import CacheControls, CompletionRequest


class Recording(HitVerifier):
    """Accepts the (query, candidate) texts it is told to; records every batch it was given."""

    def __init__(self, accept: set[tuple[str, str]]) -> None:
        self.accept = accept
        self.batches: list[list[tuple[str, str]]] = []

    async def verify(self, pairs: Sequence[PromptPair]) -> list[Verdict]:
        self.batches.append([(p.query, p.candidate) for p in pairs])
        return [
            Verdict(True, 0.9) if (p.query, p.candidate) in self.accept else Verdict(False, 0.1, "low_probability")
            for p in pairs
        ]


def candidate(prompt: str, similarity: float, turns: list[tuple[str, str]] | None = None) -> Candidate:
    answer = CachedAnswer(entry_id=prompt, exact_key=prompt, model="m", completion={}, created_at=0.0)
    return Candidate(answer, similarity, prompt_text=prompt, turns=turns)


async def test_the_nearest_accepted_candidate_is_served_and_all_are_judged_in_one_batch() -> None:
    verifier = Recording(accept={("query", "second")})
    found = [candidate("first", 0.95), candidate("second", 0.9), candidate("third", 0.85)]
    choice = await choose_candidate(found, "query", 0.7, verifier)
    assert choice.candidate is found[1] and choice.refusals == ["low_probability"]
    assert verifier.batches == [[("query", "first"), ("query", "second"), ("query", "third")]]


async def test_candidates_below_the_pre_filter_never_reach_the_verifier() -> None:
    verifier = Recording(accept={("query", "stored")})
    choice = await choose_candidate([candidate("stored", 0.5)], "query", 0.7, verifier)
    assert choice.candidate is None and verifier.batches == []


class Broken(HitVerifier):
    async def verify(self, pairs: Sequence[PromptPair]) -> list[Verdict]:
        raise ValueError("bad input")


async def test_a_failing_verifier_refuses_instead_of_failing_the_lookup() -> None:
    choice = await choose_candidate([candidate("stored", 0.99)], "query", 0.7, Broken())
    assert choice.candidate is None and choice.refusals == ["verifier_error"]


GYM = ("user", "I want to cancel my gym membership")
WHICH = ("assistant", "Which one, Elm Street or Oak Street?")


async def test_under_the_aligned_match_a_replaced_turn_must_be_accepted_too() -> None:
    mine = [GYM, WHICH, ("user", "It's the Elm Street gym")]
    same = [("user", "please cancel my gym membership"), WHICH, ("user", "the one on Elm Street")]
    other = [("user", "please cancel my gym membership"), WHICH, ("user", "the one on Oak Street")]
    accept = {("Yes, go ahead.", "yes go ahead"), (GYM[1], same[0][1]), (mine[2][1], same[2][1])}

    verifier = Recording(accept)
    choice = await choose_candidate([candidate("yes go ahead", 0.97, same)], "Yes, go ahead.", 0.7, verifier, mine)
    assert choice.candidate is not None
    # The equal assistant turn asks nothing; the prompt and the first replaced turn go first, then the rest.
    assert verifier.batches == [[("Yes, go ahead.", "yes go ahead"), (GYM[1], same[0][1])], [(mine[2][1], same[2][1])]]

    choice = await choose_candidate(
        [candidate("yes go ahead", 0.97, other)], "Yes, go ahead.", 0.7, Recording(accept), mine
    )
    assert choice.candidate is None and choice.refusals == ["replaced_low_probability"]


async def test_a_turn_only_one_conversation_has_is_folded_into_its_question() -> None:
    question = "How do I cancel?"
    verifier = Recording(accept={(question, question), (f"hi there {question}", question)})
    stored = candidate(question, 0.9, [("user", "hi there")])
    choice = await choose_candidate([stored], question, 0.7, verifier, [])
    assert choice.candidate is stored
    assert verifier.batches == [[(question, question), (f"hi there {question}", question)]]


class Screening(Recording):
    """Refuses on sight (an exact check) any pair whose query says "12 months"."""

    def screen(self, pair: PromptPair) -> Verdict | None:
        return Verdict(False, 0.0, "number_mismatch", certain=True) if "12 months" in pair.query else None


async def test_a_candidate_an_exact_check_refuses_spares_the_model_its_other_turns() -> None:
    stored = [GYM, ("assistant", "I can pause it for 3 months instead.")]
    mine = [("user", "please cancel my gym membership"), ("assistant", "I can pause it for 12 months instead.")]
    verifier = Screening(accept={("yes please", "yes please")})
    choice = await choose_candidate([candidate("yes please", 1.0, stored)], "yes please", 0.7, verifier, mine)
    assert choice.candidate is None and choice.refusals == ["replaced_number_mismatch"]
    assert verifier.batches == []


async def test_a_candidate_refused_in_one_round_is_not_read_further() -> None:
    stored = [("user", "a"), ("assistant", "b"), ("user", "c"), ("assistant", "d")]
    mine = [("user", "a2"), ("assistant", "b2"), ("user", "c2"), ("assistant", "d2")]
    verifier = Recording(accept={("q", "q"), ("b2", "b"), ("c2", "c"), ("d2", "d")})
    choice = await choose_candidate([candidate("q", 0.99, stored)], "q", 0.7, verifier, mine)
    assert choice.candidate is None and choice.refusals == ["replaced_low_probability"]
    assert verifier.batches == [[("q", "q"), ("a2", "a")]]


class Exact:
    """No exact entries; every request leads its single flight. Records the store contexts kept."""

    def __init__(self) -> None:
        self.pending: dict[str, tuple[PendingStore, float]] = {}

    async def get(self, key: str) -> None:
        return None

    async def keep_pending(self, key: str, pending: bytes, ttl_seconds: float) -> None:
        self.pending[key] = (PendingStore.from_bytes(pending), ttl_seconds)

    async def lead_flight(self, key: str, request_id: str, lease: float, even_if_stored: bool = False) -> str:
        return LEADING


class Entries:
    def __init__(self, found: list[Candidate]) -> None:
        self.found = found

    async def nearest(
        self, partition: str, vector: list[float], max_age: int | None, limit: int = 1
    ) -> list[Candidate]:
        return self.found


async def embed(texts: list[str]) -> tuple[list[list[float]], str]:
    return [[1.0, 0.0] for _ in texts], "e"


def request(threshold: float | None, **controls_set: object) -> CompletionRequest:
    controls = CacheControls(similarity_threshold=threshold, **controls_set)
    body = {"model": "m", "messages": [{"role": "user", "content": "What is the capital of France?"}]}
    return CompletionRequest(
        request_id="r", tenant="t", received_at=0.0, deadline=time.time() + 30, body=body, controls=controls
    )


async def test_a_client_threshold_may_tighten_the_operators_never_loosen_it() -> None:
    """Even with the similarity alone deciding, `X-Cache-Similarity-Threshold: 0` can't reach below the floor."""
    far = candidate("How do I convert 5 miles to km?", 0.3)
    near = candidate("what's the capital of france", 0.9)
    policy = LookupPolicy(similarity_threshold=0.7, max_cacheable_temperature=1.0, flight_lease_seconds=5.0)

    def lookup(found: Candidate) -> Lookup:
        return Lookup(Exact(), Entries([found]), embed, policy, ThresholdVerifier())  # type: ignore[arg-type]

    assert isinstance(await lookup(far).run(request(0.0)), Miss)
    assert isinstance(await lookup(far).run(request(None)), Miss)
    assert isinstance(await lookup(near).run(request(None)), Hit)
    assert isinstance(await lookup(near).run(request(0.95)), Miss)  # tightened by the client


async def test_under_the_exact_match_a_chat_stored_by_the_aligned_match_never_answers_a_lone_question() -> None:
    """They share a partition (an operator who switched back, a rolling deploy): Alice's chat is not Bob's."""
    policy = LookupPolicy(similarity_threshold=0.7, max_cacheable_temperature=1.0, flight_lease_seconds=5.0)
    chat = candidate("what's the capital of france", 0.99, [("user", "I'm Alice, in Quebec."), ("assistant", "Hi!")])
    miss = await Lookup(Exact(), Entries([chat]), embed, policy, ThresholdVerifier()).run(request(None))  # type: ignore[arg-type]
    assert isinstance(miss, Miss) and miss.lookup.refusals == ["conversation_context"]


async def test_the_threshold_verifier_refuses_what_it_cannot_read() -> None:
    """A conversation's turns have no cosine: the similarity alone can't judge them."""
    chat = candidate("yes please", 0.99, [("user", "Cancel my gym"), ("assistant", "Or pause it?")])
    choice = await choose_candidate([chat], "yes please", 0.7, ThresholdVerifier(), [("user", "Cancel my gym")])
    assert choice.candidate is None and choice.refusals == ["no_similarity"]


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


async def test_a_miss_keeps_what_storing_its_answer_needs_under_its_exact_key() -> None:
    """The LLM worker's store event names only the exact key: the partition, prompt and vector stay here."""
    policy = LookupPolicy(similarity_threshold=0.7, max_cacheable_temperature=1.0, flight_lease_seconds=5.0)
    far = candidate("How do I convert 5 miles to km?", 0.3)

    exact = Exact()
    miss = await Lookup(exact, Entries([far]), embed, policy, ThresholdVerifier()).run(request(None))  # type: ignore[arg-type]
    assert isinstance(miss, Miss) and miss.lookup.exact_key is not None
    [(key, (pending, ttl))] = exact.pending.items()
    assert key == miss.lookup.exact_key
    assert (pending.prompt_text, pending.embedding, pending.embedding_model) == (
        "What is the capital of France?",
        [1.0, 0.0],
        "e",
    )
    assert pending.partition_key and 30 < ttl <= 91  # the request's deadline, and a minute for the store event

    exact = Exact()
    near = candidate("what's the capital of france", 0.9)
    assert isinstance(await Lookup(exact, Entries([near]), embed, policy, ThresholdVerifier()).run(request(None)), Hit)  # type: ignore[arg-type]
    assert exact.pending == {}  # a hit stores nothing

    exact = Exact()
    unstored = await Lookup(exact, Entries([far]), embed, policy, ThresholdVerifier()).run(request(None, store=False))  # type: ignore[arg-type]
    assert isinstance(unstored, Miss) and exact.pending == {}  # Cache-Control: no-store
