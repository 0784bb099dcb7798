"""Storing a generated answer: Redis under its exact key (the requests waiting on its single flight are
answered right then), the catalogue row and (for semantic search) its prompt vector in PostgreSQL;
then the tenant's cap is enforced, least recently used first. The prompt, partition and vector come
from what the lookup kept under the exact key (entries.PendingStore): the store event carries the answer."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable

import psycopg

from services.cache_worker.entries import CachedAnswer, PendingStore
from services.cache_worker.entry_store import EntryStore, NewEntry
from services.cache_worker.exact_store import ExactStore
from services.cache_worker.flights import Waiter, read_waiters
from services.cache_worker.metrics import DEGRADED, EVICTED, STORES
from shared.contracts.store_events import CompletionGenerated, FlightEnded
from shared.worker import Retryable

log = logging.getLogger(__name__)

# Answers the requests that waited on a stored answer's single flight (the handler replies to each).
AnswerWaiters = Callable[[CachedAnswer, list[Waiter]], Awaitable[None]]
# Sends on the requests that waited on a flight that stored nothing (upstream, each on its own).
ReleaseWaiters = Callable[[list[Waiter]], Awaitable[None]]


class Storer:
    """Writes CompletionGenerated events into both stores and releases single flights."""

    def __init__(self, exact: ExactStore, entries: EntryStore, default_ttl_seconds: int, max_entries: int) -> None:
        self._exact = exact
        self._entries = entries
        self._default_ttl = default_ttl_seconds
        self._max_entries = max_entries

    async def store(self, event: CompletionGenerated, answer_waiters: AnswerWaiters | None = None) -> None:
        """Store one answer. A Redis failure is logged and counted; a Postgres failure raises (so it is retried).

        The requests waiting on the answer's single flight are answered as soon as Redis holds it, and
        taken off its list once answered (a failure answering them raises: the event is redone)."""
        ttl = event.ttl_seconds or self._default_ttl
        answer = CachedAnswer(
            entry_id=str(uuid.UUID(hex=event.event_id)) if _is_uuid_hex(event.event_id) else str(uuid.uuid4()),
            exact_key=event.exact_key,
            model=event.model,
            completion=event.completion,
            created_at=event.created_at,
            upstream=event.upstream,
        )
        # Read before the answer goes into Redis: once it is there, an identical request hits, and a paraphrase
        # right behind it should find the vector too; nothing but PostgreSQL's insert stands between them.
        pending = await self._pending(event.exact_key)
        waiting: list[bytes] = []
        try:
            waiting = await self._exact.put(event.tenant, answer, ttl)
            STORES.labels("redis", "ok").inc()
        except Exception as exc:
            log.warning("storing in Redis failed: %s", exc)
            STORES.labels("redis", "error").inc()
            DEGRADED.labels("redis", "store").inc()
        if waiting:
            if answer_waiters is not None:
                await answer_waiters(answer, _others(read_waiters(waiting), event.flight_id))
            await self._exact.waiters_done(answer.exact_key, len(waiting))

        try:
            await self._entries.put(_new_entry(answer, event, ttl, pending))
        except psycopg.DataError as exc:
            # Never transient (e.g. NUL bytes, which PostgreSQL text and jsonb refuse): the entry stays
            # exact-only, in Redis, rather than failing the event twice into the dead-letter queue.
            log.warning("entry not storable in PostgreSQL, kept in Redis only: %s", type(exc).__name__)
            STORES.labels("postgres", "unstorable").inc()
            await self._mark_redis_only(event, ttl)
            await self._forget_pending(event.exact_key)  # no retry will want it
            return
        except psycopg.OperationalError as exc:
            STORES.labels("postgres", "error").inc()
            await self._mark_redis_only(event, ttl)  # until a retry stores it, if one does
            raise Retryable(f"storing an entry in PostgreSQL failed ({type(exc).__name__})") from exc
        except Exception:
            STORES.labels("postgres", "error").inc()
            raise
        STORES.labels("postgres", "ok").inc()
        await self._forget_pending(event.exact_key)
        await self.enforce_cap(event.tenant)

    async def _pending(self, key: str) -> PendingStore | None:
        """What the lookup kept for storing this answer; None (the entry is exact-only) when there is none: the
        request was not semantic, its store context expired, or Redis failed (counted)."""
        try:
            raw = await self._exact.pending(key)
        except Exception as exc:
            log.warning("reading a miss's store context failed, its entry is exact-only: %s", exc)
            DEGRADED.labels("redis", "pending_store").inc()
            return None
        return PendingStore.from_bytes(raw) if raw is not None else None

    async def _forget_pending(self, key: str) -> None:
        """Not before PostgreSQL has the entry: a store event that is retried finds it still there."""
        try:
            await self._exact.forget_pending(key)
        except Exception as exc:  # it expires on its own
            log.debug("forgetting a stored miss's context failed: %s", exc)

    async def _mark_redis_only(self, event: CompletionGenerated, ttl: int) -> None:
        """Let a namespace flush find an entry only Redis holds."""
        try:
            await self._exact.mark_redis_only(event.tenant, event.namespace, event.exact_key, ttl)
        except Exception as exc:
            log.warning("noting a Redis-only entry failed: %s", exc)
            DEGRADED.labels("redis", "store").inc()

    async def end_flight(self, event: FlightEnded, release: ReleaseWaiters | None = None) -> None:
        """The leader stored nothing: let the requests waiting on it go upstream themselves."""
        try:
            waiting = await self._exact.end_flight(event.exact_key, event.flight_id)
        except Exception as exc:
            log.warning("releasing a single flight failed (its lease lapses on its own): %s", exc)
            DEGRADED.labels("redis", "single_flight").inc()
            return
        if waiting:
            if release is not None:
                await release(_others(read_waiters(waiting), event.flight_id))
            await self._exact.waiters_done(event.exact_key, len(waiting))

    async def enforce_cap(self, tenant: str) -> None:
        """Evict the tenant's least recently used entries beyond its cap (failures logged and counted)."""
        try:
            evicted = await self._exact.over_cap(tenant, self._max_entries)
            if evicted:
                await self._exact.delete(tenant, evicted)
                await self._entries.delete_keys(tenant, evicted)
                EVICTED.inc(len(evicted))
        except Exception as exc:
            log.warning("enforcing the entry cap failed: %s", exc)
            DEGRADED.labels("redis", "evict").inc()


def _new_entry(answer: CachedAnswer, event: CompletionGenerated, ttl: int, pending: PendingStore | None) -> NewEntry:
    """The catalogue row of an answer, with its vector when the lookup kept one (else exact-only)."""
    if pending is None:
        return NewEntry(answer=answer, tenant=event.tenant, namespace=event.namespace, ttl_seconds=ttl)
    return NewEntry(
        answer=answer,
        tenant=event.tenant,
        namespace=event.namespace,
        ttl_seconds=ttl,
        prompt_text=pending.prompt_text,
        partition_key=pending.partition_key,
        embedding_model=pending.embedding_model,
        embedding=pending.embedding,
        # PostgreSQL text and jsonb refuse NUL; the verifier reads words and symbols, never NUL.
        context_text=pending.context_text.replace("\x00", "") if pending.context_text else None,
        turns=[[role, text.replace("\x00", "")] for role, text in pending.turns] if pending.turns is not None else None,
    )


def _is_uuid_hex(value: str) -> bool:
    try:
        uuid.UUID(hex=value)
    except ValueError:
        return False
    return True


def _others(waiters: list[Waiter], leader: str | None) -> list[Waiter]:
    """The waiters but the leader itself (noted on its own flight when its lookup was redelivered): it
    got its own answer from the LLM worker, and its usage is the miss's."""
    return [waiter for waiter in waiters if waiter.request.request_id != leader]
