"""The default hit verifier: a learned pair classifier and a decision over it, after the exact checks.

A cross-encoder reads both prompts at once ("[CLS] stored [SEP] asked [SEP]") and gives the
probability that one answer serves both: a rewording, a typo or a greeting does not change the
question, another number, name, direction or audience does. It is all-MiniLM-L6-v2 fine-tuned on
generated and hand-written pairs (eval/train.py), run here as an int8 ONNX graph on one CPU thread
(about 3 ms for two short questions), off the event loop. The decision (`trees.py`, fitted by
eval/fit_decision.py on pairs the classifier never trained on) weighs its score with how the two
prompts differ on the surface and their cosine (`pair_features.py`): a question typed again with a
typo is served where the classifier alone hesitates. Its output is a probability too, so
`min_probability` (VERIFIER_MIN_PROBABILITY) is the one setting: higher serves fewer paraphrases
and fewer wrong answers. A pair without a cosine (an earlier turn under the reworded conversation
match), or one measured with another embedding model than the decision was fitted with, is decided
on the classifier's probability alone.

Decided before the model, in order: the same text once normalized (case, spaces, punctuation) is
served; a prompt the model can't read whole (longer than its input) is refused, as only an exact
hit is safe for it; a pair that differs on a check of `checks.py` (numbers, code) is refused.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from services.cache_worker.verifier import pair_input
from services.cache_worker.verifier.base import HitVerifier, PromptPair, Verdict
from services.cache_worker.verifier.checks import CHECKS, Check, first_disagreement
from services.cache_worker.verifier.pair_features import FEATURE_NAMES, features
from services.cache_worker.verifier.text import normalized
from services.cache_worker.verifier.trees import BoostedTrees

MODEL_DIR = Path(__file__).with_name("model")
DECISION_FILE = "decision.json"


def load_decision(directory: Path | str = MODEL_DIR) -> BoostedTrees | None:
    """The decision shipped beside the classifier, if any (without it, the classifier's probability decides)."""
    path = Path(directory) / DECISION_FILE
    if not path.is_file():
        return None
    decision = BoostedTrees.load(path)
    if decision.feature_names != FEATURE_NAMES:
        raise ValueError(f"{path} reads {decision.feature_names}, pair_features.py computes {FEATURE_NAMES}")
    return decision


def default_min_probability(directory: Path | str = MODEL_DIR) -> float:
    """The shipped operating point (chosen by eval/choose.py on pairs nobody trained on)."""
    meta = json.loads((Path(directory) / "model.json").read_text())
    value = meta.get("default_min_probability")
    if value is None:
        raise ValueError(f"{directory}/model.json has no operating point: run python -m eval.choose")
    return float(value)


class PairClassifier:
    """The shipped cross-encoder: an ONNX graph, the model's tokenizer, and its calibration."""

    def __init__(
        self, session: Any, tokenizer: Any, max_length: int, calibration: tuple[float, float], mark: bool = True
    ) -> None:
        self._session = session
        self._tokenizer = tokenizer
        self.max_length = max_length
        self._a, self._b = calibration
        self._mark = mark

    @classmethod
    def load(
        cls,
        directory: Path | str = MODEL_DIR,
        *,
        threads: int = 1,
        calibration: tuple[float, float] | None = None,
        max_length: int | None = None,
    ) -> PairClassifier:
        import onnxruntime

        directory = Path(directory)
        meta = json.loads((directory / "model.json").read_text()) if (directory / "model.json").is_file() else {}
        if calibration is None:
            calibration = (float(meta["calibration"]["a"]), float(meta["calibration"]["b"]))
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        session = onnxruntime.InferenceSession(
            str(directory / "cross_encoder.onnx"), options, providers=["CPUExecutionProvider"]
        )
        return cls(
            session,
            pair_input.load_tokenizer(directory / "tokenizer.json"),
            int(max_length or meta.get("max_length", 128)),
            calibration,
            mark=meta.get("input", "plain") == "marked",
        )

    def probabilities(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """P(one answer serves both) of each (stored, asked) pair, read whole or cut to the input length."""
        if not pairs:
            return []
        (logits,) = self._session.run(None, pair_input.encode(self._tokenizer, pairs, self.max_length, self._mark))
        z = self._a * logits.reshape(-1).astype(np.float64) + self._b
        return (1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))).tolist()  # type: ignore[no-any-return]

    def fits(self, a: str, b: str) -> bool:
        """Whether the model reads both prompts whole (else what it doesn't read could be what differs)."""
        return pair_input.length(self._tokenizer, a, b, self._mark) <= self.max_length

    def warm_up(self) -> None:
        self.probabilities([("How do I reset my password?", "how can I reset my password")])


class CrossEncoderVerifier(HitVerifier):
    """Normalized equality, the exact checks, then the classifier and the decision at `min_probability`."""

    def __init__(
        self,
        classifier: PairClassifier,
        min_probability: float,
        checks: tuple[Check, ...] = CHECKS,
        threads: int = 1,
        decision: BoostedTrees | None = None,
    ) -> None:
        self.classifier = classifier
        self.min_probability = min_probability
        self.decision = decision
        self._checks = checks
        # The model runs off the event loop; ONNX Runtime releases the GIL while it computes.
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="verifier")

    def screen(self, pair: PromptPair) -> Verdict | None:
        """The verdict when the model is not needed (same text, an exact check, too long), else None."""
        if normalized(pair.query) == normalized(pair.candidate):
            return Verdict(True, 1.0, certain=True)
        refusal = first_disagreement(pair.query, pair.candidate, self._checks)
        if refusal is not None:
            return Verdict(False, 0.0, refusal, certain=True)
        if not self.classifier.fits(pair.candidate, pair.query):
            return Verdict(False, 0.0, "prompt_too_long", certain=True)
        return None

    async def scores(self, pairs: Sequence[PromptPair], screened: bool = False) -> list[Verdict | float]:
        """For each pair: its verdict without the model, or the model's probability (one model run for all).
        `screened`: the pairs passed `screen` already, all go to the model."""
        results: list[Verdict | float | None] = [None if screened else self.screen(pair) for pair in pairs]
        todo = [i for i, s in enumerate(results) if s is None]
        if todo:
            loop = asyncio.get_running_loop()
            probabilities = await loop.run_in_executor(self._executor, self.probabilities, [pairs[i] for i in todo])
            for i, p in zip(todo, probabilities, strict=True):
                results[i] = p
        return [s for s in results if s is not None]

    def probabilities(self, pairs: Sequence[PromptPair]) -> list[float]:
        """The decision's probability of each pair: one classifier run for all, then the trees."""
        scores = self.classifier.probabilities([(pair.candidate, pair.query) for pair in pairs])
        return [self.probability(pair, p) for pair, p in zip(pairs, scores, strict=True)]

    def probability(self, pair: PromptPair, classifier_probability: float) -> float:
        """The decision's probability for a pair the classifier scored (its own when there is no decision)."""
        if self.decision is None or pair.similarity is None or pair.embedding_model != self.decision.embedding_model:
            return classifier_probability
        row = features(pair.candidate, pair.query, classifier_probability, pair.similarity)
        return self.decision.probability(row)

    async def verify(self, pairs: Sequence[PromptPair]) -> list[Verdict]:
        return [s if isinstance(s, Verdict) else self.decide(s) for s in await self.scores(pairs)]

    async def verify_screened(self, pairs: Sequence[PromptPair]) -> list[Verdict]:
        return [s if isinstance(s, Verdict) else self.decide(s) for s in await self.scores(pairs, screened=True)]

    def decide(self, probability: float) -> Verdict:
        if probability >= self.min_probability:
            return Verdict(True, probability)
        return Verdict(False, probability, "low_probability")

    async def close(self) -> None:
        self._executor.shutdown(wait=False)
