"""The embedder's RPC (`embed.rpc`): texts from the cache worker, unit-length vectors back."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shared.contracts.base import Contract


class EmbedRequest(Contract):
    """Texts to embed, sent by the cache worker (or the eval harness) to the embedder."""

    type: Literal["embed_request"] = "embed_request"
    texts: list[str] = Field(min_length=1)


class EmbedResult(Contract):
    """Unit-length embeddings, one per text, in order."""

    type: Literal["embeddings"] = "embeddings"
    model: str
    dim: int
    vectors: list[list[float]]
