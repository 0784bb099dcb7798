"""The shared Batcher: batches by size and by time, one in flight, each caller answered only after its batch ran,
every item of a failed batch failed (the embedder's, the cache worker's and the stats consumer's batches)."""

from __future__ import annotations

import asyncio

import pytest

from shared.batching import Batcher, BatcherClosed

LONG = 60.0  # a timer that never fires within a test


class FakeWriter:
    """Records each batch; can be held (to observe waiting callers) or made to fail."""

    def __init__(self, *, fail: Exception | None = None) -> None:
        self.batches: list[list[int]] = []
        self.fail = fail
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self, items: list[int]) -> list[int]:
        await self.release.wait()
        if self.fail is not None:
            raise self.fail
        self.batches.append(list(items))
        return [item * 10 for item in items]


def batcher_of(writer: FakeWriter, *, max_size: int, max_wait: float) -> Batcher[int, int]:
    return Batcher(writer, name="test", max_size=max_size, linger=max_wait)


async def add_all(batcher: Batcher[int, int], items: list[int]) -> list[asyncio.Task[int]]:
    tasks = [asyncio.create_task(batcher.submit(item)) for item in items]
    await asyncio.sleep(0)  # let every submit() join its batch
    return tasks


async def test_flushes_when_a_batch_is_full() -> None:
    writer = FakeWriter()
    batcher = batcher_of(writer, max_size=3, max_wait=LONG)

    tasks = await add_all(batcher, [1, 2, 3, 4, 5, 6, 7])
    await asyncio.wait_for(asyncio.gather(*tasks[:6]), 1)

    assert writer.batches == [[1, 2, 3], [4, 5, 6]]
    assert not tasks[6].done()  # the third batch is not full and its timer is far away
    await batcher.close()
    await tasks[6]
    assert writer.batches[-1] == [7]


async def test_flushes_after_max_wait() -> None:
    writer = FakeWriter()
    batcher = batcher_of(writer, max_size=100, max_wait=0.05)

    loop = asyncio.get_running_loop()
    started = loop.time()
    tasks = await add_all(batcher, [1, 2])
    await asyncio.wait_for(asyncio.gather(*tasks), 1)

    assert writer.batches == [[1, 2]]
    assert loop.time() - started >= 0.045
    # The next item starts a new batch with its own timer.
    assert await asyncio.wait_for(batcher.submit(3), 1) == 30
    assert writer.batches == [[1, 2], [3]]


async def test_submit_returns_only_after_its_batch_is_written() -> None:
    writer = FakeWriter()
    writer.release.clear()
    batcher = batcher_of(writer, max_size=2, max_wait=LONG)

    tasks = await add_all(batcher, [1, 2])
    await asyncio.sleep(0.02)
    assert not any(task.done() for task in tasks)
    assert writer.batches == []

    writer.release.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 1)
    assert writer.batches == [[1, 2]]


async def test_a_failed_write_raises_in_every_add_of_the_batch() -> None:
    cause = ConnectionError("database down")
    writer = FakeWriter(fail=cause)
    batcher = batcher_of(writer, max_size=3, max_wait=LONG)

    tasks = await add_all(batcher, [1, 2, 3])
    results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 1)

    assert all(result is cause for result in results)

    # The batcher itself keeps working once the database is back.
    writer.fail = None
    tasks = await add_all(batcher, [4, 5, 6])
    await asyncio.wait_for(asyncio.gather(*tasks), 1)
    assert writer.batches == [[4, 5, 6]]


async def test_a_cancelled_caller_does_not_cancel_the_batch() -> None:
    writer = FakeWriter()
    writer.release.clear()
    batcher = batcher_of(writer, max_size=2, max_wait=LONG)

    first, second = await add_all(batcher, [1, 2])
    first.cancel()
    writer.release.set()
    await asyncio.wait_for(second, 1)
    assert writer.batches == [[1, 2]]


async def test_close_flushes_what_is_left_and_refuses_more() -> None:
    writer = FakeWriter()
    batcher = batcher_of(writer, max_size=100, max_wait=LONG)

    tasks = await add_all(batcher, [1, 2])
    await asyncio.wait_for(batcher.close(), 1)

    assert writer.batches == [[1, 2]]
    await asyncio.wait_for(asyncio.gather(*tasks), 1)
    with pytest.raises(BatcherClosed):
        await batcher.submit(3)


async def test_close_waits_for_writes_in_progress() -> None:
    writer = FakeWriter()
    writer.release.clear()
    batcher = batcher_of(writer, max_size=2, max_wait=LONG)

    tasks = await add_all(batcher, [1, 2])
    closing = asyncio.create_task(batcher.close())
    await asyncio.sleep(0.02)
    assert not closing.done()

    writer.release.set()
    await asyncio.wait_for(closing, 1)
    assert writer.batches == [[1, 2]]
    await asyncio.gather(*tasks)


def test_rejects_nonsense_limits() -> None:
    with pytest.raises(ValueError):
        batcher_of(FakeWriter(), max_size=0, max_wait=1)
    with pytest.raises(ValueError):
        batcher_of(FakeWriter(), max_size=1, max_wait=-1)


async def test_each_caller_gets_its_own_items_result_and_one_batch_runs_at_a_time() -> None:
    writer = FakeWriter()
    in_flight = 0
    most = 0

    async def run(items: list[int]) -> list[int]:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return await writer(items)

    batcher: Batcher[int, int] = Batcher(run, name="test", max_size=4)
    results = await asyncio.wait_for(asyncio.gather(*(batcher.submit(n) for n in range(10))), 2)
    assert results == [n * 10 for n in range(10)]
    assert most == 1 and all(len(batch) <= 4 for batch in writer.batches)
    await batcher.close()
