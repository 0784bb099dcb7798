"""The embedder's batcher against a fake provider: no idle wait, batching, order, size, failures, dedupe, close."""

from __future__ import annotations

import asyncio

import pytest

from services.embedder.batching import embed_batcher
from shared.batching import BatcherClosed
from tests.unit.embedder.fakes import FakeProvider, vector_of


@pytest.fixture
async def provider() -> FakeProvider:
    return FakeProvider()


async def test_concurrent_callers_share_few_batches_and_get_their_own_vectors(provider: FakeProvider) -> None:
    batcher = embed_batcher(provider, max_size=64)
    requests = [[f"q{i}-a", f"q{i}-bb", f"q{i}-ccc"][: 1 + i % 3] for i in range(50)]

    results = await asyncio.gather(*(batcher.submit_many(texts) for texts in requests))

    assert 1 <= len(provider.calls) <= 3
    for texts, vectors in zip(requests, results, strict=True):
        assert vectors == [vector_of(text) for text in texts]
    assert provider.max_in_flight == 1
    await batcher.close()


async def test_batches_never_exceed_max_size(provider: FakeProvider) -> None:
    batcher = embed_batcher(provider, max_size=16)
    big = [f"text {i}" for i in range(100)]
    small = [[f"other {i}"] for i in range(30)]

    results = await asyncio.gather(batcher.submit_many(big), *(batcher.submit_many(texts) for texts in small))

    assert all(len(call) <= 16 for call in provider.calls)
    assert sum(len(call) for call in provider.calls) == 130
    assert results[0] == [vector_of(text) for text in big]
    assert results[1:] == [[vector_of(texts[0])] for texts in small]
    assert provider.max_in_flight == 1
    await batcher.close()


async def test_an_idle_model_takes_a_lone_text_at_once(provider: FakeProvider) -> None:
    batcher = embed_batcher(provider, max_size=64)

    caller = asyncio.create_task(batcher.submit_many(["alone"]))
    for _ in range(3):  # a few turns of the event loop, no timer: nothing waits for company
        await asyncio.sleep(0)

    assert provider.calls == [["alone"]]
    assert await caller == [vector_of("alone")]
    await batcher.close()


async def test_texts_arriving_during_a_batch_go_together_in_the_next_one() -> None:
    provider = FakeProvider(delay=0.05)
    batcher = embed_batcher(provider, max_size=4)

    first = asyncio.create_task(batcher.submit_many(["first"]))
    await asyncio.sleep(0.01)  # the first batch is now in flight
    later = [asyncio.create_task(batcher.submit_many([f"later {i}"])) for i in range(6)]
    await asyncio.gather(first, *later)

    assert provider.calls == [["first"], [f"later {i}" for i in range(4)], ["later 4", "later 5"]]
    assert provider.max_in_flight == 1
    await batcher.close()


async def test_the_texts_of_one_call_go_in_one_batch(provider: FakeProvider) -> None:
    batcher = embed_batcher(provider, max_size=4)

    vectors = await asyncio.wait_for(batcher.submit_many(["a", "b", "c", "d"]), timeout=5)

    assert vectors == [vector_of(t) for t in "abcd"]
    assert provider.calls == [["a", "b", "c", "d"]]
    await batcher.close()


async def test_a_failed_batch_fails_every_caller_in_it_and_the_next_batch_works() -> None:
    provider = FakeProvider(fail_on="poison")
    batcher = embed_batcher(provider, max_size=64)

    results = await asyncio.gather(
        batcher.submit_many(["poison"]),
        *(batcher.submit_many([f"innocent {i}"]) for i in range(9)),
        return_exceptions=True,
    )

    assert len(provider.calls) == 1
    assert all(isinstance(result, RuntimeError) for result in results)
    assert await batcher.submit_many(["afterwards"]) == [vector_of("afterwards")]
    await batcher.close()


async def test_identical_texts_are_embedded_once(provider: FakeProvider) -> None:
    batcher = embed_batcher(provider, max_size=64)

    results = await asyncio.gather(
        *(batcher.submit_many(["same question"]) for _ in range(20)),
        batcher.submit_many(["x", "same question", "x"]),
    )

    assert len(provider.calls) == 1
    assert sorted(provider.calls[0]) == ["same question", "x"]
    assert results[:20] == [[vector_of("same question")]] * 20
    assert results[20] == [vector_of("x"), vector_of("same question"), vector_of("x")]
    await batcher.close()


async def test_a_cancelled_caller_does_not_cancel_a_text_it_shares() -> None:
    provider = FakeProvider(delay=0.05)
    batcher = embed_batcher(provider, max_size=64)

    impatient = asyncio.create_task(batcher.submit_many(["shared"]))
    patient = asyncio.create_task(batcher.submit_many(["shared"]))
    await asyncio.sleep(0)
    impatient.cancel()

    assert await patient == [vector_of("shared")]
    await batcher.close()


async def test_close_lets_the_batch_in_flight_finish_within_its_timeout() -> None:
    provider = FakeProvider(delay=0.05)
    batcher = embed_batcher(provider, max_size=64)
    waiting = asyncio.create_task(batcher.submit_many(["quick"]))
    await asyncio.sleep(0.01)  # the batch is now in flight

    await batcher.close(timeout=1)

    assert await waiting == [vector_of("quick")]


async def test_close_fails_callers_still_waiting_past_its_timeout_and_refuses_new_ones() -> None:
    provider = FakeProvider(delay=1)
    batcher = embed_batcher(provider, max_size=64)
    waiting = asyncio.create_task(batcher.submit_many(["slow"]))
    await asyncio.sleep(0.05)  # the batch is now in flight

    await batcher.close(timeout=0.05)

    with pytest.raises(BatcherClosed):
        await waiting
    with pytest.raises(BatcherClosed):
        await batcher.submit_many(["late"])


async def test_empty_input_needs_no_provider_call(provider: FakeProvider) -> None:
    batcher = embed_batcher(provider)
    assert await batcher.submit_many([]) == []
    assert provider.calls == []
    await batcher.close()
