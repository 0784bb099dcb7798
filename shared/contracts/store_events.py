"""Events to the cache worker's store queues: answers to store (`cache.store`, durable) and the
single-flight bookkeeping (`FlightEnded` there, `FlightRenewal` on `cache.flights`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, TypeAdapter

from shared.contracts.base import Contract


class CompletionGenerated(Contract):
    """A complete, storable answer from the upstream: the cache worker stores it (Redis + pgvector). The
    exact key is the whole reference: the cache worker kept what else it needs under it at the lookup."""

    type: Literal["completion_generated"] = "completion_generated"
    event_id: str
    tenant: str
    namespace: str
    model: str
    exact_key: str
    completion: dict[str, Any]
    upstream: str | None = None
    ttl_seconds: int | None = None
    created_at: float
    flight_id: str | None = None  # the request id of the single flight's leader that produced it, if it led one


class FlightEnded(Contract):
    """The single-flight leader of an exact key finished without storing an answer: waiters go upstream."""

    type: Literal["flight_ended"] = "flight_ended"
    tenant: str
    exact_key: str
    reason: str
    flight_id: str | None = None  # the leader's request id: a flight since taken over is left alone


class FlightRenewal(Contract):
    """The leader of a single flight is still at work (sent by the LLM worker every third of its lease):
    the cache worker extends its lease. Transient: a leader that stops renewing has died, and its
    followers take over once the lease lapses."""

    type: Literal["flight_renewal"] = "flight_renewal"
    exact_key: str
    flight_id: str  # the leader's request id
    lease_seconds: float = Field(gt=0, le=300)


class GeneratedEmbedding(BaseModel):
    """One input's vector from the upstream, to store under its exact key."""

    key: str
    embedding: list[float] | str
    tokens: int = 0


class EmbeddingsGenerated(Contract):
    """Vectors the upstream computed for an embeddings request: the cache worker stores each under its key."""

    type: Literal["embeddings_generated"] = "embeddings_generated"
    event_id: str
    tenant: str
    namespace: str
    model: str
    items: list[GeneratedEmbedding] = Field(min_length=1)
    ttl_seconds: int | None = None
    created_at: float


StoreEvent = Annotated[CompletionGenerated | FlightEnded | EmbeddingsGenerated, Field(discriminator="type")]


STORE_EVENT_ADAPTER: TypeAdapter[StoreEvent] = TypeAdapter(StoreEvent)
