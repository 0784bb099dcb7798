"""A streamed miss being relayed: a stream restarted by a redelivery ends with an error event, repeats nothing,
and leaves the new attempt running (its answer is what a single flight's waiters get)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from services.gateway.auth import Principal
from services.gateway.forwarding import OPENAI, _Relay
from shared.contracts.completions import ChunkReply


def chunk(seq: int, text: str) -> ChunkReply:
    return ChunkReply(seq=seq, chunk={"choices": [{"index": 0, "delta": {"content": text}}]})


async def test_a_stream_restarted_by_a_redelivery_ends_without_cancelling_the_new_attempt() -> None:
    cancelled: list[str] = []
    counted: list[int] = []
    state = SimpleNamespace(
        settings=SimpleNamespace(stream_idle_timeout_seconds=5.0),
        inbox=SimpleNamespace(close=lambda request_id: None),
        announce_cancelled=cancelled.append,
        record_tokens_later=lambda principal, tokens: counted.append(tokens),
    )
    replies: asyncio.Queue[bytes] = asyncio.Queue()
    for reply in (chunk(1, " world"), chunk(0, "Hello")):  # the redelivered request starts over at 0
        replies.put_nowait(reply.model_dump_json().encode())
    principal = Principal(tenant="acme", key_id="k", tokens_per_day=1000)
    relay = _Relay(state, principal, "r1", chunk(0, "Hello"), replies, OPENAI, {"messages": []}, False)  # type: ignore[arg-type]
    events = [event async for event in relay.chunks()]
    assert b"stream_interrupted" in events[-1] and len(events) == 3  # Hello, world, the error: nothing twice
    assert cancelled == []  # the new attempt goes on: a single flight's waiters get its answer
    assert counted and counted[0] > 0  # what the client was sent still counts against its key's day
