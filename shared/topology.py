"""The broker topology: every exchange, queue and queue argument, declared in this one place.

RabbitMQ refuses to change a queue's arguments once it exists, so nothing else declares queues.
All names start with the deployment's prefix (`BROKER_PREFIX`), which is how test runs and
deployments that share a broker stay apart. `CHANNELS` is the map: which messages each queue or
fanout exchange carries, what answers them, who publishes and who consumes (`python -m
shared.topology` prints it; the README's copy is checked against it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, get_args, get_origin

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange
from pydantic import BaseModel

from shared.contracts.base import ErrorReply
from shared.contracts.cache_admin import (
    CacheAdminRequest,
    EntriesDeleted,
    EntryFound,
    EntryPage,
    NearEntries,
    ReportedPairList,
    ServedPairList,
    WrongHitReported,
)
from shared.contracts.completions import (
    ChunkReply,
    CompletionReply,
    EmbeddingsCached,
    EndReply,
    RequestCancelled,
    WorkRequest,
)
from shared.contracts.control import ControlRequest, HealthReport, ModelsResult
from shared.contracts.embedder import EmbedRequest, EmbedResult
from shared.contracts.stats import StatsRequest, StatsResult, UsagePage
from shared.contracts.store_events import FlightRenewal, StoreEvent
from shared.contracts.tenants import (
    KeyCreated,
    KeyList,
    KeyResolution,
    KeyRevocation,
    KeyRevoked,
    TenantCreated,
    TenantList,
    TenantsRequest,
)
from shared.contracts.usage_events import UsageMessage

SERVICES = ("gateway", "cache_worker", "embedder", "llm_worker", "stats_consumer", "tenants")


@dataclass(frozen=True)
class Topology:
    """Names of everything on the broker for one deployment prefix."""

    prefix: str

    @property
    def exchange(self) -> str:
        """Direct exchange every request and event is published to (routing key = queue name)."""
        return f"{self.prefix}.direct"

    @property
    def dead_letter_exchange(self) -> str:
        return f"{self.prefix}.dlx"

    @property
    def cancellations(self) -> str:
        """Fanout exchange of RequestCancelled: every LLM worker hears of every cancelled request."""
        return f"{self.prefix}.cancellations"

    @property
    def dead_letters(self) -> str:
        return f"{self.prefix}.dead_letters"

    @property
    def cache_lookup(self) -> str:
        """Completion requests from the gateway, consumed by cache workers."""
        return f"{self.prefix}.cache.lookup"

    @property
    def llm_request(self) -> str:
        """Cache misses, consumed by LLM workers."""
        return f"{self.prefix}.llm.request"

    @property
    def embed_rpc(self) -> str:
        """Embedding requests, consumed by embedders."""
        return f"{self.prefix}.embed.rpc"

    @property
    def cache_store(self) -> str:
        """CompletionGenerated events (durable), consumed by cache workers."""
        return f"{self.prefix}.cache.store"

    @property
    def cache_flights(self) -> str:
        """FlightRenewals (transient, short-lived), consumed by cache workers: single-flight leases kept alive."""
        return f"{self.prefix}.cache.flights"

    @property
    def usage_events(self) -> str:
        """UsageEvents (durable), consumed by the stats consumer."""
        return f"{self.prefix}.usage.events"

    @property
    def stats_query(self) -> str:
        """Stats queries (RPC), consumed by the stats consumer."""
        return f"{self.prefix}.stats.query"

    @property
    def cache_admin(self) -> str:
        """Cache browsing and invalidation (RPC), consumed by cache workers."""
        return f"{self.prefix}.cache.admin"

    @property
    def tenants_rpc(self) -> str:
        """Tenant and API-key requests (RPC: admin API, CLI, key resolution), consumed by the tenants service."""
        return f"{self.prefix}.tenants.rpc"

    @property
    def key_revocations(self) -> str:
        """Fanout exchange of KeyRevoked: every gateway process drops a revoked key from its cache at once."""
        return f"{self.prefix}.keys.revoked"

    def control(self, service: str) -> str:
        """Health and model-list queries (RPC) for one service."""
        return f"{self.prefix}.{service}.control"

    def work_queues(self) -> list[str]:
        return [
            self.cache_admin,
            self.cache_lookup,
            self.llm_request,
            self.embed_rpc,
            self.cache_store,
            self.usage_events,
            self.stats_query,
            self.tenants_rpc,
        ]

    def all_exchanges(self) -> list[str]:
        return [self.exchange, self.dead_letter_exchange, self.cancellations, self.key_revocations]

    def all_queues(self) -> list[str]:
        return [*self.work_queues(), self.cache_flights, *(self.control(s) for s in SERVICES), self.dead_letters]


@dataclass(frozen=True)
class Channel:
    """One queue (or fanout exchange) as a reader follows a message across the broker."""

    name: str  # the Topology attribute that names it
    carries: tuple[type[BaseModel], ...]  # what its consumers validate (each names itself by `type`)
    replies: tuple[type[BaseModel], ...]  # what goes back to the caller's reply queue (none: an event)
    producers: tuple[str, ...]
    consumers: tuple[str, ...]
    note: str = ""


def members(union: Any) -> tuple[type[BaseModel], ...]:
    """The message classes of a discriminated union, as its consumers validate it (its TypeAdapter)."""
    while get_origin(union) is Annotated:
        union = get_args(union)[0]
    return tuple(get_args(member)[0] if get_origin(member) is Annotated else member for member in get_args(union))


# What each queue carries is the union its consumers validate with, so the map can't drift from the code.
# Every RPC can also answer ErrorReply (an error as data, turned into the HTTP error at the gateway).
CHANNELS: tuple[Channel, ...] = (
    Channel(
        "cache_lookup",
        members(WorkRequest),
        (CompletionReply, ChunkReply, EndReply, EmbeddingsCached, ErrorReply),
        ("gateway",),
        ("cache_worker",),
        "a hit is answered here; a miss goes on to llm_request with the gateway's reply address",
    ),
    Channel(
        "llm_request",
        members(WorkRequest),
        (CompletionReply, ChunkReply, EndReply, ErrorReply),
        ("cache_worker",),
        ("llm_worker",),
        "replies go straight to the gateway that asked",
    ),
    Channel("embed_rpc", (EmbedRequest,), (EmbedResult, ErrorReply), ("cache_worker", "eval"), ("embedder",)),
    Channel(
        "cache_store",
        members(StoreEvent),
        (),
        ("llm_worker",),
        ("cache_worker",),
        "durable: an answer to store survives a cache worker restart",
    ),
    Channel(
        "cache_flights",
        (FlightRenewal,),
        (),
        ("llm_worker",),
        ("cache_worker",),
        "a single flight's leader is alive; expires after 10 s",
    ),
    Channel(
        "usage_events",
        members(UsageMessage),
        (),
        ("cache_worker", "llm_worker"),
        ("stats_consumer",),
        "durable; hits come in batches",
    ),
    Channel(
        "stats_query", members(StatsRequest), (StatsResult, UsagePage, ErrorReply), ("gateway",), ("stats_consumer",)
    ),
    Channel(
        "cache_admin",
        members(CacheAdminRequest),
        (
            EntryPage,
            EntryFound,
            EntriesDeleted,
            NearEntries,
            WrongHitReported,
            ReportedPairList,
            ServedPairList,
            ErrorReply,
        ),
        ("gateway",),
        ("cache_worker",),
    ),
    Channel(
        "tenants_rpc",
        members(TenantsRequest),
        (TenantCreated, TenantList, KeyCreated, KeyList, KeyRevocation, KeyResolution, ErrorReply),
        ("gateway", "tenants CLI"),
        ("tenants",),
    ),
    Channel(
        "control",
        members(ControlRequest),
        (HealthReport, ModelsResult, ErrorReply),
        ("gateway",),
        SERVICES,
        "one queue per service",
    ),
    Channel(
        "cancellations",
        (RequestCancelled,),
        (),
        ("gateway",),
        ("llm_worker",),
        "fanout: every LLM worker hears it",
    ),
    Channel("key_revocations", (KeyRevoked,), (), ("tenants",), ("gateway",), "fanout: every gateway hears it"),
    Channel(
        "dead_letters",
        (),
        (),
        ("every worker",),
        ("people",),
        "what a worker gave up on, kept a week, via dead_letter_exchange",
    ),
)


def channel_table() -> str:
    """CHANNELS as a Markdown table (the README carries it)."""
    rows = ["| queue | carries | answered by | from | to | |", "|---|---|---|---|---|---|"]
    for channel in CHANNELS:
        carries = ", ".join(model.__name__ for model in channel.carries) or "any message"
        replies = ", ".join(model.__name__ for model in channel.replies) or "(event)"
        queue = (
            "<prefix>.<service>.control" if channel.name == "control" else getattr(Topology("<prefix>"), channel.name)
        )
        rows.append(
            f"| `{queue}` | {carries} | {replies} | {', '.join(channel.producers)} "
            f"| {', '.join(channel.consumers)} | {channel.note} |"
        )
    return "\n".join(rows) + "\n"


async def declare(channel: AbstractChannel, topology: Topology) -> AbstractExchange:
    """Declare the whole topology (idempotent) and return the main exchange."""
    dlx = await channel.declare_exchange(topology.dead_letter_exchange, aio_pika.ExchangeType.FANOUT, durable=True)
    dead = await channel.declare_queue(
        topology.dead_letters,
        durable=True,
        # Dead letters are for people to inspect; keep them a week and bounded in number.
        arguments={"x-message-ttl": 7 * 24 * 3600 * 1000, "x-max-length": 100_000},
    )
    await dead.bind(dlx)

    await channel.declare_exchange(topology.cancellations, aio_pika.ExchangeType.FANOUT, durable=True)
    await channel.declare_exchange(topology.key_revocations, aio_pika.ExchangeType.FANOUT, durable=True)
    exchange = await channel.declare_exchange(topology.exchange, aio_pika.ExchangeType.DIRECT, durable=True)
    for name in topology.work_queues():
        # No queue-level dead-lettering: requests expire with their deadline by design; workers
        # dead-letter explicitly what they give up on (shared.worker).
        queue = await channel.declare_queue(name, durable=True)
        await queue.bind(exchange, routing_key=name)
    # A renewal is worth something only within the lease it extends.
    flights = await channel.declare_queue(topology.cache_flights, durable=True, arguments={"x-message-ttl": 10_000})
    await flights.bind(exchange, routing_key=topology.cache_flights)
    for service in SERVICES:
        name = topology.control(service)
        # Control queries are only worth answering while someone waits.
        queue = await channel.declare_queue(name, durable=True, arguments={"x-message-ttl": 10_000})
        await queue.bind(exchange, routing_key=name)
    return exchange


if __name__ == "__main__":
    print(channel_table(), end="")
