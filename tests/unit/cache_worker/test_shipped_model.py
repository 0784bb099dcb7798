"""The classifier and decision shipped in the project (verifier/model/): they load, carry their operating
point and the note of how they were made, and decide plain cases the way every user would expect."""

from __future__ import annotations

import json

import pytest

from services.cache_worker.verifier import PromptPair
from services.cache_worker.verifier.cross_encoder import (
    MODEL_DIR,
    CrossEncoderVerifier,
    PairClassifier,
    default_min_probability,
    load_decision,
)


@pytest.fixture(scope="module")
def verifier() -> CrossEncoderVerifier:
    classifier = PairClassifier.load(MODEL_DIR)
    return CrossEncoderVerifier(classifier, default_min_probability(MODEL_DIR), decision=load_decision(MODEL_DIR))


def asked_as_served(verifier: CrossEncoderVerifier, asked: str, stored: str) -> PromptPair:
    """The pair as a lookup makes it: with a cosine, of the embedding model the decision was fitted with."""
    assert verifier.decision is not None
    return PromptPair(asked, stored, 0.9, verifier.decision.embedding_model)


def test_the_model_ships_with_its_operating_point_and_how_it_was_made() -> None:
    meta = json.loads((MODEL_DIR / "model.json").read_text())
    assert 0.0 < meta["default_min_probability"] < 1.0
    assert {"a", "b"} <= set(meta["calibration"])
    assert meta["input"] in {"marked", "plain"}
    note = (MODEL_DIR / "README.md").read_text()
    assert "make eval-train" in note


@pytest.mark.parametrize(
    ("stored", "asked"),
    [
        ("How do I change the PIN of my debit card?", "hi, how do i chnage the pin of my debit card"),
        ("What time does the pharmacy open on Sundays?", "um quick one: what time does the pharmacy open on sundays"),
        (
            "How can I export my contacts from Outlook?",
            "could you please tell me how to export my contacts from Outlook",
        ),
    ],
)
async def test_a_near_repeat_is_served(verifier: CrossEncoderVerifier, stored: str, asked: str) -> None:
    [verdict] = await verifier.verify([asked_as_served(verifier, asked, stored)])
    assert verdict.accept, verdict


@pytest.mark.parametrize(
    ("stored", "asked"),
    [
        (
            "How do I turn on two-factor authentication on my account?",
            "How do I turn off two-factor authentication on my account?",
        ),
        ("How do I convert a PDF to a Word document?", "How do I convert a Word document to a PDF?"),
        ("Can I bring a power bank in my checked luggage?", "Can I bring a power bank in my cabin luggage?"),
        ("What is the capital gains tax rate in Germany?", "What is the capital gains tax rate in Austria?"),
    ],
)
async def test_a_look_alike_is_refused(verifier: CrossEncoderVerifier, stored: str, asked: str) -> None:
    [verdict] = await verifier.verify([asked_as_served(verifier, asked, stored)])
    assert not verdict.accept, verdict


def test_probabilities_are_probabilities_and_batches_agree_with_single_runs() -> None:
    classifier = PairClassifier.load(MODEL_DIR)
    pairs = [
        ("How do I reset my router?", "how do i reset my router pls"),
        ("Is ibuprofen safe during pregnancy?", "Is paracetamol safe during pregnancy?"),
    ]
    together = classifier.probabilities(pairs)
    alone = [classifier.probabilities([p])[0] for p in pairs]
    assert all(0.0 <= p <= 1.0 for p in together)
    # Dynamic int8 quantizes activations per run, so a pair's score moves a little with its batch; no more.
    assert together == pytest.approx(alone, abs=0.02)
