"""The aligned conversation match: how two chats are laid side by side, which pairs the verifier reads, and,
with the shipped model, the plain cases every user expects (another person's name, another offer, a
greeting more)."""

from __future__ import annotations

import pytest

from services.cache_worker.entries import CachedAnswer
from services.cache_worker.entry_store import Candidate
from services.cache_worker.lookup import choose_candidate
from services.cache_worker.verifier.conversation import aligned, turn_pairs
from services.cache_worker.verifier.cross_encoder import (
    MODEL_DIR,
    CrossEncoderVerifier,
    PairClassifier,
    default_min_probability,
    load_decision,
)

HELLO = [("user", "hi there"), ("assistant", "Hello! How can I help?")]
PLAN = [("user", "I'm on the monthly plan with 15 seats."), ("assistant", "Thanks, I can see your account.")]


def test_a_turn_one_chat_lacks_faces_nothing_and_the_rest_still_face_each_other() -> None:
    assert aligned(PLAN, HELLO + PLAN) == [(None, 0), (None, 1), (0, 2), (1, 3)]
    assert aligned(HELLO + PLAN, PLAN) == [(0, None), (1, None), (2, 0), (3, 1)]


def test_a_replaced_turn_faces_its_replacement_and_roles_never_face_each_other() -> None:
    annual = [("user", "We are on the annual plan, 15 seats"), PLAN[1]]
    assert aligned(PLAN, annual) == [(0, 0), (1, 1)]
    # However unlike, a user turn in the same place faces the user turn: it is judged, not skipped.
    other = [("user", "My car failed its MOT last week."), PLAN[1]]
    assert aligned(PLAN, other) == [(0, 0), (1, 1)]
    assert aligned([("user", "a")], [("assistant", "a")]) == [(0, None), (None, 0)]


def test_an_assistant_turn_inserted_on_its_own_is_judged() -> None:
    offer = ("assistant", "By the way, I can also add a roaming pass for $10 a month.")
    chat = turn_pairs("yes please", "yes please", PLAN, [*PLAN, offer], 0.9, "e")
    assert chat.kinds == ["prompt", "inserted"] and chat.pairs[1].query.startswith("By the way")


def test_the_same_options_offered_in_another_order_are_refused_outright() -> None:
    offer = [("user", "Can you show me?"), ("assistant", "Sure: in Python or in JavaScript (Node.js)?")]
    swapped = [offer[0], ("assistant", "Sure: in JavaScript (Node.js) or in Python?")]
    compared = turn_pairs("the second one", "the second one", offer, swapped, 0.9, "e")
    assert compared.refusal == "replaced_reordered" and compared.pairs == []


def test_chats_too_long_to_align_are_refused_without_reading_them() -> None:
    long = [("user", "word " * 5000), ("assistant", "ok")] * 25  # 50 turns a side: past the alignment's budget
    compared = turn_pairs("q", "q", long, long, 0.9, "e")
    assert compared.refusal == "conversation_too_long" and compared.pairs == []
    within = [("user", "a b c " * 3000), ("assistant", "ok")] * 14  # a long chat within it: aligned, equal
    assert turn_pairs("q", "q", within, within, 0.9, "e").kinds == ["prompt"]


def test_equal_turns_ask_nothing_and_only_a_question_asked_alone_keeps_its_cosine() -> None:
    alone = turn_pairs("How do I cancel?", "how do I cancel", [], [], 0.97, "e")
    assert [(p.query, p.candidate, p.similarity) for p in alone.pairs] == [
        ("how do I cancel", "How do I cancel?", 0.97)
    ]

    chat = turn_pairs("yes please", "yes please", PLAN, HELLO + PLAN, 0.9, "e")
    assert chat.kinds == ["prompt", "inserted", "inserted"]
    assert chat.pairs[0].similarity is None  # the vector search measured the situations, not the questions
    folded = chat.pairs[1]
    assert (folded.query, folded.candidate) == ("hi there yes please", "yes please")

    changed = turn_pairs("yes", "yes", PLAN, [("user", "I'm on the annual plan with 15 seats."), PLAN[1]], 0.9, "e")
    assert changed.kinds == ["prompt", "replaced"]
    assert (changed.pairs[1].query, changed.pairs[1].candidate) == ("I'm on the annual plan with 15 seats.", PLAN[0][1])


@pytest.fixture(scope="module")
def verifier() -> CrossEncoderVerifier:
    classifier = PairClassifier.load(MODEL_DIR)
    return CrossEncoderVerifier(classifier, default_min_probability(MODEL_DIR), decision=load_decision(MODEL_DIR))


def stored(question: str, turns: list[tuple[str, str]]) -> Candidate:
    answer = CachedAnswer(entry_id="e1", exact_key="k1", model="m", completion={}, created_at=0.0)
    return Candidate(answer, 0.95, prompt_text=question, turns=turns)


FILLER = "Here is some background on my project. " * 46


@pytest.mark.parametrize(
    ("stored_turns", "asked_turns", "question"),
    [
        # The leak: another name 1,800 characters before the question.
        (
            [("user", f"My name is Alice Smith. {FILLER}"), ("assistant", "Thanks, noted.")],
            [("user", f"My name is Bob Jones. {FILLER}"), ("assistant", "Thanks, noted.")],
            "What is my name?",
        ),
        (
            [("user", "My name is Alice Smith."), ("assistant", "Nice to meet you.")],
            [("user", "My name is Bob Jones."), ("assistant", "Nice to meet you.")],
            "What is my name?",
        ),
        # The same short reply to another offer.
        (
            [("user", "My phone bill is too high."), ("assistant", "I can move you to the Basic plan at $20 a month.")],
            [("user", "My phone bill is too high."), ("assistant", "I can add a roaming pass for $10 a month.")],
            "yes please",
        ),
    ],
)
async def test_another_person_or_another_offer_is_not_served(
    verifier: CrossEncoderVerifier,
    stored_turns: list[tuple[str, str]],
    asked_turns: list[tuple[str, str]],
    question: str,
) -> None:
    choice = await choose_candidate([stored(question, stored_turns)], question, 0.5, verifier, asked_turns, "e")
    # Refused for the turn that differs: the long one because the model can't read it whole, the others by it.
    assert choice.candidate is None and choice.refusals[0].startswith("replaced_"), choice.refusals


async def test_a_turn_that_adds_a_fact_is_not_served(verifier: CrossEncoderVerifier) -> None:
    question = "Can I take ibuprofen for a headache?"
    asked = [("user", "I'm 30 weeks pregnant, by the way."), ("assistant", "Thanks for telling me.")]
    choice = await choose_candidate([stored(question, [])], question, 0.5, verifier, asked, "e")
    assert choice.candidate is None, choice.refusals


async def test_the_same_chat_typed_again_is_served(verifier: CrossEncoderVerifier) -> None:
    turns = [("user", "My phone bill is too high."), ("assistant", "I can move you to the Basic plan at $20 a month.")]
    typed = [("user", "my phone bill is too high"), turns[1]]
    choice = await choose_candidate([stored("yes please", turns)], "Yes please!", 0.5, verifier, typed, "e")
    assert choice.candidate is not None, choice.refusals
