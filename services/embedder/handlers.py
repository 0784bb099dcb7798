"""The embed RPC handler: decode an EmbedRequest, embed through the batcher, reply with vectors or an error."""

from __future__ import annotations

import logging

import orjson
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage
from pydantic import ValidationError

from services.embedder.batching import EmbedBatcher
from services.embedder.metrics import REQUESTS
from services.embedder.providers.base import EmbeddingProvider
from shared.contracts.base import ErrorInfo, ErrorReply
from shared.contracts.embedder import EmbedRequest, EmbedResult
from shared.rpc import reply
from shared.tracing import stage

log = logging.getLogger(__name__)


class EmbedHandler:
    """Answers one embed request; the Worker acks the message once this returns."""

    def __init__(self, batcher: EmbedBatcher, provider: EmbeddingProvider, reply_channel: AbstractChannel) -> None:
        self._batcher = batcher
        self._provider = provider
        self._reply_channel = reply_channel

    async def __call__(self, message: AbstractIncomingMessage) -> None:
        try:
            request = EmbedRequest.model_validate_json(message.body)
        except ValidationError:
            REQUESTS.labels("invalid").inc()
            raise  # the Worker dead-letters what it cannot read
        limit = self._provider.max_input_chars
        texts = [text[:limit] for text in request.texts]
        try:
            with stage("embed", texts=len(texts), model=self._provider.model):
                vectors = await self._batcher.submit_many(texts)
        except Exception as exc:
            # The provider is down or refused the batch: tell the caller now (it falls back to an
            # exact-only lookup) rather than retrying a request whose caller has a deadline.
            log.warning("embedding failed (correlation_id=%s): %s", message.correlation_id, exc)
            error = ErrorInfo(type="embedding_error", message=f"embedding failed: {exc}", status=503)
            body = ErrorReply(error=error).model_dump_json().encode()
            REQUESTS.labels("error").inc()
        else:
            body = encode_result(self._provider, vectors)
            REQUESTS.labels("ok").inc()
        await reply(self._reply_channel, message, body)


def encode_result(provider: EmbeddingProvider, vectors: list[list[float]]) -> bytes:
    """An EmbedResult as JSON: the envelope from the contract, the floats written straight by orjson.

    Validating and serialising 384 floats per text through pydantic costs twice what orjson alone does;
    the vectors come from our own provider, so there is nothing to validate.
    """
    envelope = EmbedResult.model_construct(model=provider.model, dim=provider.dim, vectors=[]).model_dump()
    envelope["vectors"] = vectors
    return orjson.dumps(envelope)
