"""The classifier, with an LLM judge deciding only where the classifier is unsure.

For deployments that accept an LLM call on some semantic hits: a probability at or above `band[1]`
is served and one below `band[0]` refused without asking; between the two the judge decides (a
timeout or an error is a refusal). Pairs an exact check or normalized equality decided never reach it.
"""

from __future__ import annotations

from collections.abc import Sequence

from services.cache_worker.verifier.base import HitVerifier, PromptPair, Verdict
from services.cache_worker.verifier.cross_encoder import CrossEncoderVerifier
from services.cache_worker.verifier.llm_judge import LlmJudgeVerifier


class JudgedVerifier(HitVerifier):
    def __init__(self, model: CrossEncoderVerifier, judge: LlmJudgeVerifier, band: tuple[float, float]) -> None:
        low, high = band
        if not 0 <= low <= high <= 1:
            raise ValueError(f"the judge's band must be two probabilities, low <= high: {band}")
        self._model = model
        self._judge = judge
        self._low, self._high = low, high

    def screen(self, pair: PromptPair) -> Verdict | None:
        return self._model.screen(pair)

    async def verify(self, pairs: Sequence[PromptPair]) -> list[Verdict]:
        return await self._decide(pairs, await self._model.scores(pairs))

    async def verify_screened(self, pairs: Sequence[PromptPair]) -> list[Verdict]:
        return await self._decide(pairs, await self._model.scores(pairs, screened=True))

    async def _decide(self, pairs: Sequence[PromptPair], scores: list[Verdict | float]) -> list[Verdict]:
        verdicts: list[Verdict | None] = []
        unsure = []
        for i, score in enumerate(scores):
            if isinstance(score, Verdict):
                verdicts.append(score)
            elif score >= self._high:
                verdicts.append(Verdict(True, score))
            elif score < self._low:
                verdicts.append(Verdict(False, score, "low_probability"))
            else:
                verdicts.append(None)
                unsure.append(i)
        judged = await self._judge.verify([pairs[i] for i in unsure])
        for i, verdict in zip(unsure, judged, strict=True):
            verdicts[i] = verdict
        return [v for v in verdicts if v is not None]

    async def close(self) -> None:
        await self._model.close()
        await self._judge.close()
