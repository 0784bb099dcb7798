"""Coalesced acks: one `multiple` ack never covers a delivery that is still being handled or unseen."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest

from shared.acks import CoalescedAcks


@dataclass
class FakeChannel:
    acks: list[tuple[int, bool]] = field(default_factory=list)
    tried: list[tuple[int, bool]] = field(default_factory=list)  # every ack sent, taken or not
    closed: bool = False

    async def basic_ack(self, delivery_tag: int, multiple: bool = False, wait: bool = True) -> None:
        self.tried.append((delivery_tag, multiple))
        if self.closed:
            raise RuntimeError("channel closed")
        self.acks.append((delivery_tag, multiple))

    def __hash__(self) -> int:
        return id(self)


@dataclass
class FakeMessage:
    channel: FakeChannel
    delivery_tag: int


def acked(channel: FakeChannel) -> set[int]:
    """Every tag the broker would consider acked after the channel's acks."""
    out: set[int] = set()
    for tag, multiple in channel.acks:
        out.update(range(1, tag + 1) if multiple else {tag})
    return out


async def settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


async def test_deliveries_done_in_one_turn_are_acked_with_one_multiple_ack() -> None:
    channel = FakeChannel()
    acks = CoalescedAcks()
    messages = [FakeMessage(channel, tag) for tag in range(1, 31)]
    for m in messages:
        acks.done(m)  # type: ignore[arg-type]
    await settle()
    assert channel.acks == [(30, True)]


async def test_a_delivery_still_in_hand_is_never_covered() -> None:
    channel = FakeChannel()
    acks = CoalescedAcks()
    messages = {tag: FakeMessage(channel, tag) for tag in range(1, 11)}
    for tag in (1, 2, 3, 5, 6, 9):  # 4 is slow, 7, 8 and 10 too
        acks.done(messages[tag])  # type: ignore[arg-type]
    await settle()
    assert acked(channel) == {1, 2, 3, 5, 6, 9}
    assert (3, True) in channel.acks
    assert all(not multiple for tag, multiple in channel.acks if tag > 3)

    for tag in (4, 7, 8):
        acks.done(messages[tag])  # type: ignore[arg-type]
    await settle()
    assert acked(channel) == set(range(1, 10))
    assert 10 not in acked(channel)
    before = len(channel.acks)
    acks.done(messages[10])  # type: ignore[arg-type]
    await settle()
    assert channel.acks[before:] == [(10, True)]


async def test_an_unseen_delivery_stops_the_run() -> None:
    channel = FakeChannel()
    acks = CoalescedAcks()
    first, third = FakeMessage(channel, 1), FakeMessage(channel, 3)
    for m in (first, third):
        acks.done(m)  # type: ignore[arg-type]
    await settle()
    # Tag 2 reached the consumer but its handler has not started: a `multiple` ack of 3 would ack it.
    assert channel.acks == [(1, True), (3, False)]


async def test_rejected_deliveries_are_passed_over() -> None:
    channel = FakeChannel()
    acks = CoalescedAcks()
    messages = [FakeMessage(channel, tag) for tag in range(1, 6)]
    acks.settled_elsewhere(messages[0])  # type: ignore[arg-type]
    acks.settled_elsewhere(messages[2])  # type: ignore[arg-type]
    for m in (messages[1], messages[3], messages[4]):
        acks.done(m)  # type: ignore[arg-type]
    await settle()
    assert channel.acks == [(5, True)]


async def test_each_channel_numbers_its_own_tags_and_a_closed_one_is_harmless() -> None:
    old, new = FakeChannel(closed=True), FakeChannel()
    acks = CoalescedAcks()
    for channel in (old, new):
        for tag in (1, 2):
            m = FakeMessage(channel, tag)
            acks.done(m)  # type: ignore[arg-type]
    await asyncio.wait_for(acks.drain(), 5)
    # Each channel got the ack of its own tags 1 and 2; the closed one's failed once and was given up
    # (its messages come back on the new channel), without holding up the live one's.
    assert old.tried == [(2, True)]
    assert new.acks == [(2, True)]


@dataclass
class SlowChannel(FakeChannel):
    """The first ack waits (the connection's frame queue is full) until released."""

    gate: asyncio.Event = field(default_factory=asyncio.Event)
    calls: int = 0

    async def basic_ack(self, delivery_tag: int, multiple: bool = False, wait: bool = True) -> None:
        self.calls += 1
        if self.calls == 1:
            await self.gate.wait()
        self.acks.append((delivery_tag, multiple))

    def __hash__(self) -> int:
        return id(self)


async def test_a_later_flush_never_overtakes_an_earlier_one() -> None:
    channel = SlowChannel()
    acks = CoalescedAcks()
    messages = {tag: FakeMessage(channel, tag) for tag in range(1, 5)}
    acks.done(messages[1])  # type: ignore[arg-type]
    acks.done(messages[3])  # type: ignore[arg-type]
    await settle()  # planned: (1, multiple), (3, single); the first waits for room
    acks.done(messages[2])  # type: ignore[arg-type]
    acks.done(messages[4])  # type: ignore[arg-type]
    await settle()  # planned: (4, multiple), which must not reach the broker before 3's single ack
    channel.gate.set()
    await acks.drain()
    assert channel.acks == [(1, True), (3, False), (4, True)]


async def test_a_gap_that_never_closes_turns_coalescing_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shared.acks.MAX_SETTLED_ABOVE_GAP", 5)
    channel = FakeChannel()
    acks = CoalescedAcks()
    for tag in range(2, 20):  # tag 1 never reaches a handler
        m = FakeMessage(channel, tag)
        acks.done(m)  # type: ignore[arg-type]
        await settle()
    assert 1 not in acked(channel)
    assert all(not multiple for _, multiple in channel.acks)
    assert acked(channel) == set(range(2, 20))


class ClosedChannelMessage:
    delivery_tag = 7

    @property
    def channel(self) -> FakeChannel:
        raise RuntimeError("channel closed")


async def test_a_message_of_a_closed_channel_is_left_for_redelivery() -> None:
    acks = CoalescedAcks()
    acks.done(ClosedChannelMessage())  # type: ignore[arg-type]
    acks.settled_elsewhere(ClosedChannelMessage())  # type: ignore[arg-type]
    await acks.drain()
    # Nothing was acked for it, and the acks of a live channel go on as before.
    live = FakeChannel()
    acks.done(FakeMessage(live, 1))  # type: ignore[arg-type]
    await acks.drain()
    assert live.acks == [(1, True)]
