"""Acks of a consumer channel, coalesced: one basic.ack(multiple) for a run of finished deliveries.

An ack per message was a frame, a socket write and a wake of the connection's writer task for
every cache hit, in the worker and in the broker. Handlers that finish in the same turn of the
event loop (the hits whose usage batch was just confirmed, say) are acked together at the end of
that turn, by one ack of the highest of them with `multiple`.

`multiple` acks every unacked delivery up to the tag, so it is only sent up to a tag below which
every delivery on that channel is known to be settled: acked here, or rejected or acked elsewhere
(`settled_elsewhere`). A delivery still being handled, or one the consumer has not started yet,
stops the run; finished deliveries above it are acked one by one, as before, so a slow message
never holds the prefetch slots of fast ones. A channel that closed (a broker restart) takes its
tags with it: its messages are redelivered, and the acks of the new channel start afresh.

A channel's acks go out strictly in the order they were planned, from one sender per channel:
RabbitMQ closes a channel that acks a tag twice, which a `multiple` ack overtaking an earlier
single ack of a tag below it would do. If deliveries stay unsettled below many settled ones (a
delivery that never reached its handler), the channel falls back to single acks rather than
remember an ever larger set.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aio_pika.abc import AbstractIncomingMessage

log = logging.getLogger(__name__)

# Settled tags remembered above an unsettled one before the channel gives up coalescing.
MAX_SETTLED_ABOVE_GAP = 100_000


@dataclass
class _ChannelTags:
    """Delivery tags of one channel: settled through `watermark`, and the states of those above it."""

    watermark: int = 0  # every tag up to here is settled (acked by us or elsewhere)
    done: set[int] = field(default_factory=set)  # finished, not yet acked
    settled: set[int] = field(default_factory=set)  # acked or rejected, above the watermark
    coalescing: bool = True  # False: every ack single (a gap that never closed)
    outbox: deque[tuple[int, bool]] = field(default_factory=deque)  # planned acks, in order
    sender: asyncio.Task[None] | None = None


class CoalescedAcks:
    """Collects finished deliveries and acks them at the end of the event loop's turn."""

    def __init__(self) -> None:
        # Keyed by the channel the message came on (aiormq's), which tags are numbered on.
        self._channels: weakref.WeakKeyDictionary[Any, _ChannelTags] = weakref.WeakKeyDictionary()
        self._flush_scheduled = False

    def done(self, message: AbstractIncomingMessage) -> None:
        """A delivery was handled: ack it with the others that finish in this turn of the loop."""
        found = self._tag_of(message)
        if found is None:
            return
        tags, tag = found
        tags.done.add(tag)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def settled_elsewhere(self, message: AbstractIncomingMessage) -> None:
        """A delivery was rejected or acked by itself (retries, dead letters)."""
        found = self._tag_of(message)
        if found is None:
            return
        tags, tag = found
        tags.settled.add(tag)
        _advance(tags)

    async def drain(self) -> None:
        """Send what is collected and wait for the acks in flight (before the connection closes)."""
        if self._flush_scheduled:
            self._flush()
        senders = [tags.sender for tags in self._channels.values() if tags.sender is not None]
        if senders:
            await asyncio.gather(*senders, return_exceptions=True)

    def _tag_of(self, message: AbstractIncomingMessage) -> tuple[_ChannelTags, int] | None:
        """The state of the message's channel and its tag (None: no tag, or the channel closed and the
        message comes back on the new one, unacked)."""
        if message.delivery_tag is None:
            return None
        try:
            channel = message.channel
        except Exception:
            return None
        tags = self._channels.get(channel)
        if tags is None:
            tags = self._channels[channel] = _ChannelTags()
        return tags, message.delivery_tag

    def _flush(self) -> None:
        self._flush_scheduled = False
        for channel, tags in list(self._channels.items()):
            if not tags.done:
                continue
            if tags.coalescing:
                through, single = _plan(tags)
                if len(tags.settled) > MAX_SETTLED_ABOVE_GAP:
                    log.warning("delivery %d on a channel is never settled: acking one by one", tags.watermark + 1)
                    tags.coalescing = False
                    tags.settled.clear()
            else:
                through, single = 0, sorted(tags.done)
                tags.done.clear()
            if through:
                tags.outbox.append((through, True))
            tags.outbox.extend((tag, False) for tag in single)
            if tags.sender is None or tags.sender.done():
                tags.sender = asyncio.get_running_loop().create_task(_send(channel, tags.outbox))


def _plan(tags: _ChannelTags) -> tuple[int, list[int]]:
    """Which acks settle the finished tags: one `multiple` ack through the highest finished tag of
    the settled run above the watermark (0 if none), and single acks for the finished tags above
    the first one still being handled or not yet seen."""
    highest_done = 0
    tag = tags.watermark + 1
    while tag in tags.done or tag in tags.settled:
        if tag in tags.done:
            highest_done = tag
            tags.done.discard(tag)
        else:
            tags.settled.discard(tag)
        tag += 1
    tags.watermark = tag - 1
    single = sorted(tags.done)
    tags.settled.update(single)
    tags.done.clear()
    return highest_done, single


def _advance(tags: _ChannelTags) -> None:
    """Move the watermark over settled tags (none of them needs an ack from here)."""
    tag = tags.watermark + 1
    while tag in tags.settled:
        tags.settled.discard(tag)
        tag += 1
    tags.watermark = tag - 1


async def _send(channel: Any, outbox: deque[tuple[int, bool]]) -> None:
    """Send a channel's planned acks in order until none is left (one sender per channel at a time)."""
    while outbox:
        tag, multiple = outbox.popleft()
        try:
            # No drain: an ack needs no answer. The put into the connection's frame queue can wait
            # for room, which is why only this task sends this channel's acks: none overtakes another.
            await channel.basic_ack(delivery_tag=tag, multiple=multiple, wait=False)
        except Exception as exc:  # the channel closed: its unacked messages come back on the new one
            log.debug("ack of delivery %d failed: %s", tag, exc)
            outbox.clear()
            return
