"""A value fetched over the broker, remembered for a while: what many callers ask for and none needs fresh
to the millisecond (the system's status, the upstreams' model lists)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Memo(Generic[T]):
    """The last value of a fetch, reused for `ttl_seconds`; concurrent callers share one fetch.

    A failed fetch is not remembered: the next caller tries again.
    """

    def __init__(self, ttl_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._value: tuple[float, T] | None = None
        self._fetching: asyncio.Task[T] | None = None

    async def get(self, fetch: Callable[[], Awaitable[T]]) -> T:
        if self._value is not None and self._clock() < self._value[0]:
            return self._value[1]
        if self._fetching is None or self._fetching.done():
            self._fetching = asyncio.get_running_loop().create_task(self._fetch(fetch))
        # shield: a caller that goes away does not cancel the fetch the others wait on.
        return await asyncio.shield(self._fetching)

    async def _fetch(self, fetch: Callable[[], Awaitable[T]]) -> T:
        value = await fetch()
        self._value = (self._clock() + self.ttl_seconds, value)
        return value
