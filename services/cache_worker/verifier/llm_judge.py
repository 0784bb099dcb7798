"""An optional, stronger check: ask an LLM whether one stored answer serves both questions.

Off by default (it adds an LLM round trip to every semantic hit). Any OpenAI-compatible chat
endpoint works; the call has a timeout, and a timeout, an error or an unclear reply is a refusal:
the request then goes upstream, which is always safe.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import openai

from services.cache_worker.verifier.base import HitVerifier, PromptPair, Verdict

log = logging.getLogger(__name__)

JUDGE_PROMPT = (
    "You decide whether a cached answer may be reused. Question A was answered before; question B is new. "
    "Reply YES if one correct answer to A is also a complete, correct answer to B (same meaning, same "
    "numbers, names, dates, versions, negation and scope), otherwise NO. Reply with one word."
)


class LlmJudgeVerifier(HitVerifier):
    """Asks a chat model YES/NO; only a clear YES within the timeout accepts."""

    def __init__(self, client: openai.AsyncOpenAI, model: str, timeout_seconds: float) -> None:
        self._client = client
        self._model = model
        self._timeout = timeout_seconds

    async def verify(self, pairs: Sequence[PromptPair]) -> list[Verdict]:
        return list(await asyncio.gather(*(self.judge(pair.query, pair.candidate) for pair in pairs)))

    async def judge(self, query: str, candidate: str) -> Verdict:
        try:
            response = await asyncio.wait_for(
                self._client.chat.completions.create(
                    model=self._model,
                    messages=[
                        {"role": "system", "content": JUDGE_PROMPT},
                        {"role": "user", "content": f"A: {candidate}\nB: {query}"},
                    ],
                    temperature=0,
                    max_tokens=3,
                ),
                self._timeout,
            )
        except TimeoutError:
            return Verdict(False, 0.0, "judge_timeout")
        except Exception as exc:  # any failure of an optional check is a miss, never an error
            log.warning("LLM judge failed, refusing the candidate: %s", exc)
            return Verdict(False, 0.0, "judge_error")
        content = (response.choices[0].message.content or "").strip().upper() if response.choices else ""
        if content.startswith("YES"):
            return Verdict(True, 1.0)
        return Verdict(False, 0.0, "judge_refused")

    async def close(self) -> None:
        await self._client.close()
