"""The exact cache: answers in Redis under the request's exact key, expiring with Redis TTLs."""

from __future__ import annotations

import redis.asyncio as redis

from services.cache_worker.entries import CachedAnswer


class ExactStore:
    """Redis-backed map from exact key to stored answer."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._redis = client
        self._prefix = f"{prefix}:exact:"

    async def get(self, key: str) -> CachedAnswer | None:
        raw = await self._redis.get(self._prefix + key)
        return CachedAnswer.from_bytes(raw) if isinstance(raw, bytes) else None

    async def put(self, answer: CachedAnswer, ttl_seconds: int) -> None:
        await self._redis.set(self._prefix + answer.exact_key, answer.to_bytes(), ex=ttl_seconds)

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except Exception:
            return False
