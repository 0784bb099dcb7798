"""The lookup decision: exact hit, semantic hit, a wait on an identical request in flight (noted with the
flight, holding no worker), or a miss (or bypass). What storing a miss's answer will need (its partition,
prompt and vector) is kept in Redis under its exact key, for the storer.

Knows nothing of the broker. Dependencies fail open: a Redis, Postgres or embedder failure turns
into a miss (counted), never into an error for the user.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from services.cache_worker import keys
from services.cache_worker.entries import CachedAnswer, PendingStore
from services.cache_worker.entry_store import Candidate, EntryStore
from services.cache_worker.exact_store import LEADING, STORED, ExactStore
from services.cache_worker.flights import ReplyRoute, Waiter
from services.cache_worker.keys import ConversationMatch
from services.cache_worker.metrics import (
    BEST_SIMILARITY,
    COALESCED,
    DEGRADED,
    LOOKUPS,
    REFUSED,
    STAGE_SECONDS,
    VERIFIER_SCORE,
)
from services.cache_worker.verifier import HitVerifier, PromptPair, ThresholdVerifier, Verdict
from services.cache_worker.verifier.conversation import Turn, turn_pairs
from shared.contracts.completions import CompletionRequest, LookupContext
from shared.tracing import set_attributes, stage

log = logging.getLogger(__name__)

# Pairs of one candidate the model reads at once (`_verify`): the prompt and the first differing turn, then on.
PAIRS_PER_ROUND = 2

# Texts in, unit vectors (one per text) and the embedding model's name out.
Embed = Callable[[list[str]], Awaitable[tuple[list[list[float]], str]]]


class ReportedCheck(Protocol):
    """Wrong-hit feedback (feedback.ReportedPairs): drops the candidates whose pair with this question
    was reported, returning the others and one refusal reason per candidate dropped."""

    async def drop_reported(
        self, tenant: str, prompt: str, context: str | None, candidates: list[Candidate]
    ) -> tuple[list[Candidate], list[str]]: ...


@dataclass(frozen=True)
class Hit:
    answer: CachedAnswer
    match: Literal["exact", "semantic"]
    similarity: float | None = None
    coalesced: bool = False
    refusals: tuple[str, ...] = ()  # semantic candidates refused before this one was served


@dataclass(frozen=True)
class Miss:
    lookup: LookupContext
    pending: PendingStore | None = None  # what storing its answer for semantic search needs


@dataclass(frozen=True)
class Following:
    """Noted as a waiter of the identical request in flight: its answer comes when the leader's does."""

    exact_key: str


@dataclass(frozen=True)
class LookupPolicy:
    """Settings that shape every lookup."""

    similarity_threshold: float
    max_cacheable_temperature: float
    flight_lease_seconds: float  # a leader that does not renew its lease within this is taken for dead
    conversation_match: ConversationMatch = "exact"
    candidates: int = 5  # nearest prompts checked by the hit verifier


@dataclass(frozen=True)
class Choice:
    """The outcome of checking the nearest candidates: the one served, if any, and why the others were not."""

    candidate: Candidate | None
    refusals: list[str]
    # Of each candidate given to the verifier: the verdicts it needed (its prompt's and, under the aligned
    # match, its differing turns'; those a refusal made unneeded are left out).
    verdicts: list[list[Verdict]] = field(default_factory=list)


async def choose_candidate(
    candidates: list[Candidate],
    prompt: str,
    threshold: float,
    verifier: HitVerifier,
    history: Sequence[Turn] | None = None,
    embedding_model: str | None = None,
) -> Choice:
    """The nearest candidate above the similarity pre-filter whose prompt the verifier accepts.

    Under the aligned conversation match (`history` given: the query's earlier turns, maybe none), the
    candidate's earlier turns are aligned with them and every replaced or inserted turn must be accepted
    too (`verifier.conversation`). All the pairs of all the candidates go to the verifier at once. Each
    refusal is counted by reason.
    """
    eligible = [c for c in candidates if c.similarity >= threshold]
    refusals: list[str] = []
    pairs: list[PromptPair] = []
    kinds: list[str] = []
    spans: list[tuple[Candidate, int, int]] = []  # a candidate and its pairs' slice
    for candidate in eligible:
        if candidate.prompt_text is None:
            refusals.append("prompt_unknown")
            continue
        start = len(pairs)
        if history is None:
            pairs.append(PromptPair(prompt, candidate.prompt_text, candidate.similarity, embedding_model))
            kinds.append("prompt")
        else:
            compared = turn_pairs(
                candidate.prompt_text,
                prompt,
                candidate.turns or (),
                history,
                candidate.similarity,
                embedding_model,
            )
            if compared.refusal is not None:
                refusals.append(compared.refusal)
                continue
            pairs += compared.pairs
            kinds += compared.kinds
        spans.append((candidate, start, len(pairs)))
    if not pairs:
        _count_refusals(refusals)
        return Choice(None, refusals)
    started = time.perf_counter()
    try:
        with stage("verify", candidates=len(spans)) as span:
            verdicts = await _verify(verifier, pairs, spans)
            set_attributes(span, accepted=any(_accepted(verdicts[start:end]) for _, start, end in spans))
    except Exception:
        # A broken check refuses (a miss), never fails the request.
        log.exception("the hit verifier failed; refusing the candidates")
        refusals += ["verifier_error"] * len(spans)
        _count_refusals(refusals)
        return Choice(None, refusals)
    STAGE_SECONDS.labels("verifier").observe(time.perf_counter() - started)
    chosen = None
    for candidate, start, end in spans:
        prompt_verdict = verdicts[start]
        if prompt_verdict is not None:
            VERIFIER_SCORE.labels("accepted" if prompt_verdict.accept else "refused").observe(prompt_verdict.score)
        refused = next(
            ((i, v) for i, v in enumerate(verdicts[start:end], start) if v is not None and not v.accept), None
        )
        if refused is None:
            chosen = candidate
            break
        i, verdict = refused
        # The prompt's own reason; "replaced_low_probability", "inserted_number_mismatch", ... for a turn.
        reason = verdict.reason or "verifier"
        refusals.append(reason if kinds[i] == "prompt" else f"{kinds[i]}_{reason}")
    _count_refusals(refusals)
    return Choice(chosen, refusals, [[v for v in verdicts[start:end] if v is not None] for _, start, end in spans])


async def _verify(
    verifier: HitVerifier, pairs: list[PromptPair], spans: list[tuple[Candidate, int, int]]
) -> list[Verdict | None]:
    """Each pair's verdict, None where none was needed.

    A candidate one of whose pairs an exact check (or its length) refuses is refused without the model. The
    others go to the model in rounds, a few pairs of every open candidate at once; a candidate is closed at
    its first refusal, and the rounds end once the nearest open candidate is accepted whole: a long chat
    that differs everywhere costs one round, not one run per turn.
    """
    verdicts: list[Verdict | None] = [verifier.screen(pair) for pair in pairs]
    open_spans = [(start, end) for _, start, end in spans if not _refused(verdicts[start:end])]
    while open_spans and not _accepted(verdicts[open_spans[0][0] : open_spans[0][1]]):
        todo = [
            i
            for start, end in open_spans
            for i in [k for k in range(start, end) if verdicts[k] is None][:PAIRS_PER_ROUND]
        ]
        for i, verdict in zip(todo, await verifier.verify_screened([pairs[i] for i in todo]), strict=True):
            verdicts[i] = verdict
        open_spans = [(start, end) for start, end in open_spans if not _refused(verdicts[start:end])]
    return verdicts


def _refused(verdicts: list[Verdict | None]) -> bool:
    return any(v is not None and not v.accept for v in verdicts)


def _accepted(verdicts: list[Verdict | None]) -> bool:
    return all(v is not None and v.accept for v in verdicts)


def _count_refusals(refusals: list[str]) -> None:
    for reason in refusals:
        REFUSED.labels(reason).inc()


class Lookup:
    """Runs one request through the exact cache, the semantic cache and the single-flight gate."""

    def __init__(
        self,
        exact: ExactStore,
        entries: EntryStore,
        embed: Embed,
        policy: LookupPolicy,
        verifier: HitVerifier | None = None,
        reported: ReportedCheck | None = None,
    ) -> None:
        self._exact = exact
        self._entries = entries
        self._embed = embed
        self._policy = policy
        self._verifier = verifier if verifier is not None else ThresholdVerifier()
        self._reported = reported

    async def run(self, request: CompletionRequest, route: ReplyRoute | None = None) -> Hit | Miss | Following:
        """The lookup's outcome; with the request's reply `route`, an identical request in flight is
        waited on (Following), without one the request goes upstream itself."""
        started = time.perf_counter()
        outcome = await self._decide(request, route)
        STAGE_SECONDS.labels("total").observe(time.perf_counter() - started)
        if isinstance(outcome, Hit):
            LOOKUPS.labels(f"hit_{outcome.match}", "coalesced" if outcome.coalesced else "").inc()
        elif isinstance(outcome, Following):
            pass  # counted when it is answered, or sent upstream (the handlers)
        else:
            result = "bypass" if outcome.lookup.status == "BYPASS" else "miss"
            LOOKUPS.labels(result, outcome.lookup.bypass_reason or "").inc()
        return outcome

    async def _decide(self, request: CompletionRequest, route: ReplyRoute | None) -> Hit | Miss | Following:
        controls = request.controls
        key = keys.exact_key(request.tenant, controls.namespace, request.body, request.protocol)
        context = LookupContext(status="MISS", exact_key=key, store=controls.store)

        bypass = self._bypass_reason(request)
        if bypass is not None:
            # Neither read nor stored: the answer is not one the cache should hold.
            return Miss(context.model_copy(update={"status": "BYPASS", "bypass_reason": bypass, "store": False}))
        if not controls.read:
            context = context.model_copy(update={"status": "BYPASS", "bypass_reason": "cache_control_no_cache"})

        if controls.read:
            answer, redis_up = await self._exact_get(key)
            if not redis_up:
                context = _degraded(context, "redis")
            elif answer is not None and _fresh(answer, controls.max_age_seconds):
                return Hit(answer, "exact")

        pending = None
        if controls.mode == "semantic" and (controls.read or controls.store):
            semantic = await self._semantic(request, context)
            if isinstance(semantic, Hit):
                return semantic
            context, pending = semantic.lookup, semantic.pending

        outcome = await self._single_flight(request, context, route) if controls.read and controls.store else None
        if isinstance(outcome, Hit):
            return outcome
        if pending is not None and context.store:
            await self._keep_pending(key, pending, request.deadline)
        return outcome if outcome is not None else Miss(context)

    def _bypass_reason(self, request: CompletionRequest) -> str | None:
        if request.controls.mode == "off":
            return "cache_mode_off"
        temperature = request.body.get("temperature")
        if isinstance(temperature, int | float) and temperature > self._policy.max_cacheable_temperature:
            return "temperature_above_limit"
        return None

    async def _exact_get(self, key: str) -> tuple[CachedAnswer | None, bool]:
        """The stored answer (or None), and whether Redis answered at all."""
        started = time.perf_counter()
        try:
            return await self._exact.get(key), True
        except Exception as exc:
            log.warning("exact lookup failed, going on without Redis: %s", exc)
            DEGRADED.labels("redis", "lookup").inc()
            return None, False
        finally:
            STAGE_SECONDS.labels("exact").observe(time.perf_counter() - started)

    async def _semantic(self, request: CompletionRequest, context: LookupContext) -> Hit | Miss:
        """Embed the prompt (needed to store it too); when reading, search its partition and verify."""
        controls = request.controls
        prompt = keys.semantic_prompt(request.body)
        if prompt is None:
            return Miss(context)
        history = keys.conversation(request.body)
        match = self._policy.conversation_match
        # The aligned match finds a conversation's nearest by the whole situation, not its last words alone:
        # a hundred chats ending in "yes please" would otherwise tie.
        embedded = history.embedded(prompt, match)
        started = time.perf_counter()
        try:
            vectors, embedding_model = await self._embed([embedded])
        except Exception as exc:
            log.warning("embedding failed, semantic lookup skipped: %s", exc)
            DEGRADED.labels("embedder", "lookup").inc()
            return Miss(_degraded(context, "embedder"))
        STAGE_SECONDS.labels("embedding").observe(time.perf_counter() - started)
        vector = vectors[0]
        partition = keys.partition_key(
            request.tenant,
            controls.namespace,
            request.body,
            embedding_model,
            match,
            protocol=request.protocol,
            history=history,
        )
        pending = PendingStore(
            partition_key=partition,
            prompt_text=prompt,
            embedding=vector,
            embedding_model=embedding_model,
            context_text=history.text,
            turns=history.stored_turns,
        )
        if not controls.read:
            return Miss(context, pending)

        started = time.perf_counter()
        try:
            with stage("vector.search") as span:
                candidates = await self._entries.nearest(
                    partition, vector, controls.max_age_seconds, limit=self._policy.candidates
                )
                set_attributes(span, candidates=len(candidates))
        except Exception as exc:
            log.warning("vector search failed, going on without Postgres: %s", exc)
            DEGRADED.labels("postgres", "lookup").inc()
            return Miss(_degraded(context, "postgres"), pending)
        STAGE_SECONDS.labels("vector_search").observe(time.perf_counter() - started)
        if not candidates:
            return Miss(context, pending)
        # A client's threshold may only tighten the operator's: a looser one would serve look-alikes.
        threshold = max(self._policy.similarity_threshold, controls.similarity_threshold or 0.0)
        # Wrong-hit feedback: pairs reported for this question are never candidates (feedback.py). Only
        # those past the pre-filter are checked: a lookup with none asks nothing more.
        above = [c for c in candidates if c.similarity >= threshold]
        allowed, reported = await self._drop_reported(request.tenant, prompt, history.text, above)
        if match == "exact" and history.empty:
            # A question asked alone shares its partition with the chats the aligned match stored (an operator
            # who switched back, a rolling deploy): under the exact match a chat's answer is never its answer.
            chats = [c for c in allowed if c.turns]
            allowed = [c for c in allowed if not c.turns]
            reported += ["conversation_context"] * len(chats)
            _count_refusals(["conversation_context"] * len(chats))
        compared = (history.turns or ()) if match == "aligned" else None
        choice = await choose_candidate(allowed, prompt, threshold, self._verifier, compared, embedding_model)
        refusals = reported + choice.refusals
        if choice.candidate is not None:
            BEST_SIMILARITY.labels("hit").observe(choice.candidate.similarity)
            return Hit(choice.candidate.answer, "semantic", choice.candidate.similarity, refusals=tuple(refusals))
        best = candidates[0].similarity
        BEST_SIMILARITY.labels("miss").observe(best)
        return Miss(context.model_copy(update={"best_similarity": best, "refusals": refusals}), pending)

    async def _keep_pending(self, key: str, pending: PendingStore, deadline: float) -> None:
        """Keep what storing this miss's answer needs until its answer may come (the request's deadline, and a
        minute for the store event). Should Redis fail, the answer is stored for exact hits only (counted)."""
        try:
            await self._exact.keep_pending(key, pending.to_bytes(), max(deadline - time.time(), 1.0) + 60.0)
        except Exception as exc:
            log.warning("keeping a miss's store context failed, its answer will be exact-only: %s", exc)
            DEGRADED.labels("redis", "pending_store").inc()

    async def _drop_reported(
        self, tenant: str, prompt: str, history: str | None, candidates: list[Candidate]
    ) -> tuple[list[Candidate], list[str]]:
        if self._reported is None:
            return candidates, []
        return await self._reported.drop_reported(tenant, prompt, history, candidates)

    async def leader_queued(self, request: CompletionRequest) -> None:
        """The broker holds a leader's request for the LLM workers: its lease lasts as long as the request may
        wait there (until its deadline, when its message expires), so that no follower takes over a flight
        whose request is only queued behind others and calls the upstream a second time. The LLM worker that
        picks it up renews it by the short lease from then on: a worker that dies lets it lapse within seconds.

        Not before the broker confirmed it: a request lost on its way keeps the short lease, and its followers
        take over. A failure (Redis) is counted: the short lease then stands."""
        lookup = request.lookup
        if lookup is None or not lookup.flight_leader or not lookup.exact_key or not lookup.flight_lease_seconds:
            return
        queued = max(lookup.flight_lease_seconds, request.deadline - time.time())
        try:
            await self._exact.renew_flight(lookup.exact_key, request.request_id, queued)
        except Exception as exc:
            log.warning("lengthening a queued leader's lease failed: %s", exc)
            DEGRADED.labels("redis", "single_flight").inc()

    async def _single_flight(
        self, request: CompletionRequest, context: LookupContext, route: ReplyRoute | None
    ) -> Hit | Miss | Following:
        """Let one of several concurrent identical misses call the upstream; note the others as its waiters.

        The leader holds a lease (renewed by the LLM worker while it works; lengthened while its request
        waits in the queue, `leader_queued`). A waiter holds no worker: its message is acked once it is
        noted, and its reply comes with the leader's answer.
        """
        key = context.exact_key
        assert key is not None
        lease = self._policy.flight_lease_seconds
        try:
            for _ in range(3):  # a flight that ends between our two steps: look again
                led = await self._exact.lead_flight(key, request.request_id, lease)
                if led == STORED:
                    # The previous leader stored its answer (and ended its flight) since our exact lookup:
                    # a finished flight is never flown twice, unless its answer is too old for us.
                    answer = await self._exact.get(key)
                    if answer is not None and _fresh(answer, request.controls.max_age_seconds):
                        COALESCED.labels("served").inc()
                        return Hit(answer, "exact", coalesced=True)
                    led = await self._exact.lead_flight(key, request.request_id, lease, even_if_stored=True)
                if led == LEADING:
                    return Miss(context.model_copy(update={"flight_leader": True, "flight_lease_seconds": lease}))
                # Another request leads, or this one does already: its lookup was redelivered after its worker
                # died, maybe after handing it on. It waits on its own flight rather than call the upstream a
                # second time (a streamed answer would come twice): if its request is on its way, the answer
                # comes; if not, nobody renews the lease, and within it the request is sent here again to lead.
                if route is None:
                    return Miss(context)  # nowhere to send a waiter's answer: go upstream alone
                waiter = Waiter(
                    request=request.model_copy(update={"lookup": context}),
                    reply_to=route.reply_to,
                    correlation_id=route.correlation_id,
                )
                remaining = request.deadline - time.time()
                if await self._exact.follow_flight(key, waiter.model_dump_json().encode(), remaining):
                    COALESCED.labels("waiting").inc()
                    return Following(key)
                answer = await self._exact.get(key)  # the flight just ended: its answer may be stored
                if answer is not None and _fresh(answer, request.controls.max_age_seconds):
                    COALESCED.labels("served").inc()
                    return Hit(answer, "exact", coalesced=True)
        except Exception as exc:
            log.warning("single flight unavailable, going upstream: %s", exc)
            DEGRADED.labels("redis", "single_flight").inc()
            return Miss(_degraded(context, "redis"))
        return Miss(context)


def _degraded(context: LookupContext, dependency: str) -> LookupContext:
    """A lookup that went on without a dependency answers as a bypass that says which (fail-open)."""
    if context.status == "BYPASS":
        return context
    return context.model_copy(update={"status": "BYPASS", "bypass_reason": f"{dependency}_unavailable"})


def _fresh(answer: CachedAnswer, max_age_seconds: int | None) -> bool:
    return max_age_seconds is None or answer.age_seconds() <= max_age_seconds
