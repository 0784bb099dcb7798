"""The hit verifier: what is decided before the model, the model's setting, and the LLM judge's band."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from services.cache_worker.verifier import PromptPair, Verdict
from services.cache_worker.verifier.cross_encoder import CrossEncoderVerifier
from services.cache_worker.verifier.judged import JudgedVerifier
from services.cache_worker.verifier.llm_judge import LlmJudgeVerifier
from services.cache_worker.verifier.pair_features import features


class FakeClassifier:
    """Gives each (stored, asked) pair the probability it is told to; records every run."""

    def __init__(self, probabilities: dict[tuple[str, str], float], max_chars: int = 200) -> None:
        self._probabilities = probabilities
        self._max_chars = max_chars
        self.runs: list[list[tuple[str, str]]] = []

    def probabilities(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        self.runs.append(list(pairs))
        return [self._probabilities.get(pair, 0.5) for pair in pairs]

    def fits(self, a: str, b: str) -> bool:
        return len(a) + len(b) <= self._max_chars


def pair(query: str, candidate: str) -> PromptPair:
    return PromptPair(query, candidate, 0.9)


async def test_the_same_text_typed_differently_is_served_without_the_model() -> None:
    model = FakeClassifier({})
    verifier = CrossEncoderVerifier(model, 0.6)  # type: ignore[arg-type]
    [verdict] = await verifier.verify(
        [pair("what is the boiling point of water", "What is the boiling point of water?")]
    )
    assert verdict == Verdict(True, 1.0, certain=True) and model.runs == []


async def test_a_failed_exact_check_or_an_unreadable_length_refuses_without_the_model() -> None:
    model = FakeClassifier({}, max_chars=100)
    verifier = CrossEncoderVerifier(model, 0.6)  # type: ignore[arg-type]
    number, long = await verifier.verify(
        [pair("Convert 50 miles to km", "Convert 5 miles to km"), pair("x " * 60, "y")]
    )
    assert (number.accept, number.reason, number.certain) == (False, "number_mismatch", True)
    assert (long.accept, long.reason) == (False, "prompt_too_long")
    assert model.runs == []


async def test_the_model_judges_the_rest_in_one_run_at_the_setting() -> None:
    model = FakeClassifier({("How do I reset my password?", "how can i reset my password"): 0.93, ("a", "b"): 0.4})
    verifier = CrossEncoderVerifier(model, 0.6)  # type: ignore[arg-type]
    served, refused = await verifier.verify(
        [pair("how can i reset my password", "How do I reset my password?"), pair("b", "a")]
    )
    assert served == Verdict(True, 0.93) and refused == Verdict(False, 0.4, "low_probability")
    assert model.runs == [[("How do I reset my password?", "how can i reset my password"), ("a", "b")]]
    stricter = CrossEncoderVerifier(model, 0.95)  # type: ignore[arg-type]
    [verdict] = await stricter.verify([pair("how can i reset my password", "How do I reset my password?")])
    assert not verdict.accept


class FakeJudge(LlmJudgeVerifier):
    def __init__(self, answer: bool | Exception) -> None:
        self.answer = answer
        self.asked: list[tuple[str, str]] = []

    async def judge(self, query: str, candidate: str) -> Verdict:
        self.asked.append((query, candidate))
        if isinstance(self.answer, Exception):
            return Verdict(False, 0.0, "judge_error")
        return Verdict(self.answer, 1.0 if self.answer else 0.0, None if self.answer else "judge_refused")

    async def close(self) -> None:
        pass


@pytest.mark.parametrize(("probability", "asked"), [(0.95, False), (0.1, False), (0.5, True)])
async def test_the_judge_decides_only_the_uncertain_band(probability: float, asked: bool) -> None:
    model = CrossEncoderVerifier(FakeClassifier({("stored", "asked"): probability}), 0.6)  # type: ignore[arg-type]
    judge = FakeJudge(False)
    [verdict] = await JudgedVerifier(model, judge, (0.2, 0.9)).verify([pair("asked", "stored")])
    assert bool(judge.asked) is asked
    assert verdict.accept is (probability >= 0.9)


async def test_a_judge_that_fails_refuses_and_one_that_agrees_serves() -> None:
    model = CrossEncoderVerifier(FakeClassifier({("stored", "asked"): 0.5}), 0.6)  # type: ignore[arg-type]
    [failed] = await JudgedVerifier(model, FakeJudge(RuntimeError()), (0.2, 0.9)).verify([pair("asked", "stored")])
    assert (failed.accept, failed.reason) == (False, "judge_error")
    [agreed] = await JudgedVerifier(model, FakeJudge(True), (0.2, 0.9)).verify([pair("asked", "stored")])
    assert agreed.accept


async def test_rules_decide_before_the_judge_is_asked() -> None:
    model = CrossEncoderVerifier(FakeClassifier({}), 0.6)  # type: ignore[arg-type]
    judge = FakeJudge(True)
    [verdict] = await JudgedVerifier(model, judge, (0.0, 1.0)).verify([pair("Convert 50 miles", "Convert 5 miles")])
    assert verdict.reason == "number_mismatch" and judge.asked == []


def test_a_band_that_is_no_band_is_refused() -> None:
    model = CrossEncoderVerifier(FakeClassifier({}), 0.6)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        JudgedVerifier(model, FakeJudge(True), (0.9, 0.2))


class FixedDecision:
    """A decision that answers `probability` and records the rows it was given."""

    embedding_model = "all-MiniLM-L6-v2"

    def __init__(self, probability: float) -> None:
        self._probability = probability
        self.rows: list[list[float]] = []

    def probability(self, row: list[float]) -> float:
        self.rows.append(row)
        return self._probability


async def test_the_decision_has_the_last_word_on_a_pair_with_a_cosine() -> None:
    stored, asked = "How do I reset my password?", "how do i reset my pasword"
    model = FakeClassifier({(stored, asked): 0.3})
    decision = FixedDecision(0.9)
    verifier = CrossEncoderVerifier(model, 0.6, decision=decision)  # type: ignore[arg-type]
    [verdict] = await verifier.verify([PromptPair(asked, stored, 0.87, "all-MiniLM-L6-v2")])
    assert verdict.accept and verdict.score == 0.9
    # The stored prompt first, the classifier's score of (stored, asked), the cosine the search measured.
    assert decision.rows == [features(stored, asked, 0.3, 0.87)]


async def test_a_cosine_of_another_embedding_model_is_decided_on_the_classifier_alone() -> None:
    model = FakeClassifier({("How do I reset my password?", "how do i reset my pasword"): 0.3})
    decision = FixedDecision(0.9)
    verifier = CrossEncoderVerifier(model, 0.6, decision=decision)  # type: ignore[arg-type]
    [verdict] = await verifier.verify(
        [PromptPair("how do i reset my pasword", "How do I reset my password?", 0.87, "text-embedding-3-small")]
    )
    assert not verdict.accept and verdict.score == 0.3 and decision.rows == []


async def test_a_pair_without_a_cosine_is_decided_on_the_classifier_alone() -> None:
    model = FakeClassifier({("my earlier turn", "my erlier turn"): 0.3})
    decision = FixedDecision(0.99)
    verifier = CrossEncoderVerifier(model, 0.6, decision=decision)  # type: ignore[arg-type]
    [verdict] = await verifier.verify([PromptPair("my erlier turn", "my earlier turn")])
    assert not verdict.accept and verdict.score == 0.3 and decision.rows == []


async def test_a_lookup_screens_each_pair_once() -> None:
    """choose_candidate screens every pair first; what it passes on goes to the model without a second screen."""
    from services.cache_worker.entries import CachedAnswer
    from services.cache_worker.entry_store import Candidate
    from services.cache_worker.lookup import choose_candidate

    class Counting(CrossEncoderVerifier):
        screened = 0

        def screen(self, pair: PromptPair) -> Verdict | None:
            Counting.screened += 1
            return super().screen(pair)

    model = FakeClassifier({("How do I reset my password?", "password reset steps"): 0.9})
    verifier = Counting(model, 0.6)  # type: ignore[arg-type]
    answer = CachedAnswer(entry_id="e", exact_key="k", model="m", completion={}, created_at=0.0)
    stored = Candidate(answer, 0.9, prompt_text="How do I reset my password?")
    choice = await choose_candidate([stored], "password reset steps", 0.5, verifier)
    assert choice.candidate is stored and Counting.screened == 1 and len(model.runs) == 1
