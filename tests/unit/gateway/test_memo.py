"""The gateway's memo of /status and the model lists: one fetch per interval, shared, failures not kept."""

from __future__ import annotations

import asyncio

import pytest

from services.gateway.memo import Memo


async def test_concurrent_callers_share_one_fetch_and_reuse_it_until_it_expires() -> None:
    now = [0.0]
    memo: Memo[int] = Memo(1.0, clock=lambda: now[0])
    calls = 0

    async def fetch() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        return calls

    assert await asyncio.gather(*(memo.get(fetch) for _ in range(10))) == [1] * 10
    now[0] = 0.9
    assert await memo.get(fetch) == 1 and calls == 1
    now[0] = 1.0
    assert await memo.get(fetch) == 2


async def test_a_failed_fetch_is_not_remembered() -> None:
    memo: Memo[int] = Memo(60.0)

    async def failing() -> int:
        raise TimeoutError

    async def working() -> int:
        return 7

    with pytest.raises(TimeoutError):
        await memo.get(failing)
    assert await memo.get(working) == 7
