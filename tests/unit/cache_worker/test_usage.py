"""The cache worker's usage publisher: batches while one is in flight, confirms each caller, fails them together."""

from __future__ import annotations

import asyncio

import pytest

from services.cache_worker.usage import UsagePublisher
from shared.batching import BatcherClosed
from shared.contracts.usage_events import UsageEvent, UsageEventBatch


def event(n: int) -> UsageEvent:
    return UsageEvent(
        event_id=f"hit-{n}", request_id=str(n), tenant="acme", model="m", result="hit_exact", created_at=1.0
    )


class SlowBroker:
    """Confirms each publish after `delay` seconds; records what was published."""

    def __init__(self, delay: float = 0.02, fail: bool = False) -> None:
        self.delay = delay
        self.fail = fail
        self.batches: list[list[str]] = []

    async def publish(self, body: bytes) -> None:
        self.batches.append([e.event_id for e in UsageEventBatch.model_validate_json(body).events])
        await asyncio.sleep(self.delay)
        if self.fail:
            raise ConnectionError("broker gone")


async def test_a_lone_event_is_published_at_once() -> None:
    broker = SlowBroker(delay=0)
    publisher = UsagePublisher(broker.publish, linger_seconds=0)
    await asyncio.wait_for(publisher.publish(event(1)), 1)
    assert broker.batches == [["hit-1"]]
    await publisher.close()


async def test_events_arriving_during_a_publish_go_out_together_and_each_caller_is_confirmed() -> None:
    broker = SlowBroker(delay=0.05)
    publisher = UsagePublisher(broker.publish, linger_seconds=0)
    first = asyncio.create_task(publisher.publish(event(0)))
    await asyncio.sleep(0.01)  # the first batch is in flight now
    rest = [asyncio.create_task(publisher.publish(event(n))) for n in range(1, 6)]
    await asyncio.wait_for(asyncio.gather(first, *rest), 2)
    assert broker.batches == [["hit-0"], ["hit-1", "hit-2", "hit-3", "hit-4", "hit-5"]]
    await publisher.close()


async def test_batches_are_capped() -> None:
    broker = SlowBroker(delay=0.01)
    publisher = UsagePublisher(broker.publish, max_batch=2, linger_seconds=0)
    await asyncio.wait_for(asyncio.gather(*(publisher.publish(event(n)) for n in range(5))), 2)
    assert broker.batches == [["hit-0", "hit-1"], ["hit-2", "hit-3"], ["hit-4"]]
    await publisher.close()


async def test_a_failed_publish_fails_every_caller_of_its_batch_and_the_next_batch_still_goes() -> None:
    broker = SlowBroker(delay=0.01, fail=True)
    publisher = UsagePublisher(broker.publish, linger_seconds=0)
    results = await asyncio.gather(*(publisher.publish(event(n)) for n in range(3)), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    broker.fail = False
    await asyncio.wait_for(publisher.publish(event(9)), 1)
    assert broker.batches[-1] == ["hit-9"]
    await publisher.close()


async def test_a_cancelled_caller_does_not_cancel_its_batch() -> None:
    broker = SlowBroker(delay=0.05)
    publisher = UsagePublisher(broker.publish, linger_seconds=0)
    cancelled = asyncio.create_task(publisher.publish(event(1)))
    kept = asyncio.create_task(publisher.publish(event(2)))
    await asyncio.sleep(0.01)
    cancelled.cancel()
    await asyncio.wait_for(kept, 1)
    assert broker.batches == [["hit-1", "hit-2"]]
    await publisher.close()


async def test_publish_after_close_is_refused() -> None:
    publisher = UsagePublisher(SlowBroker(delay=0).publish, linger_seconds=0)
    await publisher.close()
    with pytest.raises(BatcherClosed):
        await publisher.publish(event(1))


async def test_events_within_the_linger_go_out_in_one_batch() -> None:
    broker = SlowBroker(delay=0)
    publisher = UsagePublisher(broker.publish, linger_seconds=0.05)
    first = asyncio.create_task(publisher.publish(event(0)))
    await asyncio.sleep(0.01)
    second = asyncio.create_task(publisher.publish(event(1)))
    await asyncio.wait_for(asyncio.gather(first, second), 1)
    assert broker.batches == [["hit-0", "hit-1"]]
    await publisher.close()


async def test_a_full_batch_does_not_wait_out_the_linger() -> None:
    broker = SlowBroker(delay=0)
    publisher = UsagePublisher(broker.publish, max_batch=3, linger_seconds=10)
    await asyncio.wait_for(asyncio.gather(*(publisher.publish(event(n)) for n in range(3))), 1)
    assert broker.batches == [["hit-0", "hit-1", "hit-2"]]
    await publisher.close()
