"""The request path: gateway -> cache worker -> LLM worker (`cache.lookup`, `llm.request`), the replies
that come back to the gateway's reply queue, and `RequestCancelled` (gateway -> LLM workers, fanout).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, TypeAdapter, model_validator

from shared.contracts.base import SCHEMA_VERSION, CacheInfo, Contract, ErrorReply

CacheMode = Literal["exact", "semantic", "off"]


# The API format of a request's `body` and of its answer: OpenAI's chat completions or Anthropic's Messages.
# Part of the cache partition: an answer stored in one format never answers a request in the other.
ApiProtocol = Literal["openai", "anthropic"]


class CacheControls(Contract):
    """What the caller asked of the cache for this one request (headers, settings defaults)."""

    mode: CacheMode = "semantic"  # "semantic" = exact lookup first, then semantic
    read: bool = True  # False for Cache-Control: no-cache
    store: bool = True  # False for Cache-Control: no-store
    ttl_seconds: int | None = None  # None: the cache worker's default
    max_age_seconds: int | None = None  # only accept entries younger than this
    namespace: str = "default"
    similarity_threshold: float | None = None  # None: the cache worker's default


class LookupContext(Contract):
    """What the LLM worker needs of the cache worker's lookup: the reply's cache headers, whether its answer
    may be stored, and the single flight it leads. What storing needs beyond the answer (partition, prompt,
    vector) stays with the cache worker, under `exact_key`, which the store event names."""

    status: Literal["MISS", "BYPASS"] = "MISS"
    bypass_reason: str | None = None
    store: bool = True  # False: the answer must not be stored (no-store, mode off, ...)
    flight_leader: bool = False  # this request holds the single-flight lease of its exact key
    flight_lease_seconds: float | None = None  # the leader renews its lease this often (FlightRenewal), x3
    exact_key: str | None = None
    best_similarity: float | None = None
    refusals: list[str] = Field(default_factory=list)  # why the semantic candidates were not served


# A request in another format than OpenAI's (a Messages request) is version 2: workers from before
# `protocol` existed would drop the field and read the body as OpenAI's (an OpenAI cache key, an
# OpenAI call); their `v: Literal[1]` refuses it instead (dead-lettered, the gateway answered at once).
PROTOCOL_SCHEMA_VERSION = 2


class CompletionRequest(Contract):
    """A chat completion (or Messages) request, published by the gateway to the cache worker (and on to the
    LLM worker). Deploy workers before gateways: only new gateways publish version 2."""

    v: Literal[1, 2] = 1  # type: ignore[assignment]  # 2 when `protocol` is not "openai"
    type: Literal["completion_request"] = "completion_request"
    request_id: str
    tenant: str
    key_id: str | None = None  # the API key that sent it (None until keys are required)
    received_at: float  # epoch seconds, set by the gateway
    deadline: float  # epoch seconds after which nobody waits for the answer
    stream: bool = False
    body: dict[str, Any]  # the payload as the client sent it, in `protocol`'s format
    controls: CacheControls = Field(default_factory=CacheControls)
    lookup: LookupContext | None = None
    protocol: ApiProtocol = "openai"

    @model_validator(mode="before")
    @classmethod
    def _version_of_the_protocol(cls, data: Any) -> Any:
        """Built here: the version follows the protocol. Read off the wire: a version 2 request must still
        carry its protocol (an older cache worker forwarding it would have dropped it)."""
        if not isinstance(data, dict):
            return data
        protocol = data.get("protocol", "openai")
        if "v" not in data:
            return {**data, "v": PROTOCOL_SCHEMA_VERSION if protocol != "openai" else SCHEMA_VERSION}
        if data["v"] == PROTOCOL_SCHEMA_VERSION and "protocol" not in data:
            raise ValueError(
                "a version 2 (Messages) request without its protocol: an older worker forwarded it"
                " (deploy workers before gateways)"
            )
        if data["v"] == SCHEMA_VERSION and protocol != "openai":
            raise ValueError(f"a {protocol!r} request must be version 2")
        return data


class CachedEmbedding(BaseModel):
    """One input's vector found in the cache, with the tokens the upstream charged for it."""

    index: int  # position in the request's input list
    embedding: list[float] | str  # as the upstream sent it: floats, or base64 for encoding_format=base64
    tokens: int = 0


class EmbeddingsLookup(Contract):
    """What the cache worker found for an embeddings request, as the LLM worker needs it: never the cached
    vectors (they go from the cache worker to the gateway, so no vector crosses the broker twice)."""

    status: Literal["MISS", "BYPASS"] = "MISS"
    bypass_reason: str | None = None
    store: bool = True  # False: vectors from the upstream must not be stored
    keys: list[str] = Field(default_factory=list)  # the exact key of each input of the forwarded `body`, in order
    # Where each input of the forwarded `body` is in the client's request, when some were cached (None: the same).
    indexes: list[int] | None = None
    inputs_cached: int = 0  # how many of the client's inputs the cache answered
    tokens_saved: int = 0  # the upstream's tokens for those


class EmbeddingsRequest(Contract):
    """POST /v1/embeddings, published by the gateway to the cache worker, and on to the LLM worker with only the
    inputs the cache does not hold (`lookup.indexes` says where they go)."""

    type: Literal["embeddings_request"] = "embeddings_request"
    request_id: str
    tenant: str
    key_id: str | None = None
    received_at: float
    deadline: float
    body: dict[str, Any]  # the OpenAI embeddings payload as the client sent it (or the inputs left to embed)
    controls: CacheControls = Field(default_factory=CacheControls)
    lookup: EmbeddingsLookup | None = None


# What the cache.lookup and llm.request queues carry.
WorkRequest = Annotated[CompletionRequest | EmbeddingsRequest, Field(discriminator="type")]


WORK_REQUEST_ADAPTER: TypeAdapter[WorkRequest] = TypeAdapter(WorkRequest)


class CompletionReply(Contract):
    """A whole chat completion (a hit, or a non-streamed miss)."""

    type: Literal["completion"] = "completion"
    cache: CacheInfo
    completion: dict[str, Any]


class ChunkReply(Contract):
    """One chunk of a streamed miss, in OpenAI's chat.completion.chunk format; the first carries `cache`."""

    type: Literal["chunk"] = "chunk"
    seq: int
    cache: CacheInfo | None = None
    chunk: dict[str, Any]


class EndReply(Contract):
    """The end of a streamed reply."""

    type: Literal["end"] = "end"
    seq: int
    usage: dict[str, Any] | None = None  # the upstream's token usage, for per-key token limits


class EmbeddingsCached(Contract):
    """The cached vectors of a partly cached embeddings request, from the cache worker; the LLM worker's
    reply has the others, and the gateway answers with both."""

    type: Literal["embeddings_cached"] = "embeddings_cached"
    cached: list[CachedEmbedding] = Field(min_length=1)


Reply = Annotated[CompletionReply | ChunkReply | EndReply | ErrorReply | EmbeddingsCached, Field(discriminator="type")]


REPLY_ADAPTER: TypeAdapter[Reply] = TypeAdapter(Reply)


class RequestCancelled(Contract):
    """The client of a request went away (a stream closed early): stop its upstream call, store nothing."""

    type: Literal["request_cancelled"] = "request_cancelled"
    request_id: str
