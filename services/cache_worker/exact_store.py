"""The exact cache in Redis: answers under their exact key (with Redis TTLs), the per-tenant LRU
order, and the single-flight locks that make concurrent identical misses call the upstream once.

Lookups that arrive together share one MGET: under load a round trip per hit, each on its own
pooled connection, was a sixth of the cache worker's time.
"""

from __future__ import annotations

import asyncio
import time

import redis.asyncio as redis

from services.cache_worker.entries import CachedAnswer

# Keys per DEL command when a whole tenant is flushed.
DELETE_CHUNK = 1000


class ExactStore:
    """Redis-backed exact cache."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._redis = client
        self._prefix = prefix
        self._gets = _GetBatcher(client)

    def _entry(self, key: str) -> str:
        return f"{self._prefix}:exact:{key}"

    def _lru(self, tenant: str) -> str:
        return f"{self._prefix}:lru:{tenant}"

    def _redis_only(self, tenant: str, namespace: str) -> str:
        return f"{self._prefix}:redis_only:{tenant}:{namespace}"

    def _flight(self, key: str) -> str:
        return f"{self._prefix}:flight:{key}"

    async def get(self, key: str) -> CachedAnswer | None:
        raw = await self._gets.get(self._entry(key))
        return CachedAnswer.from_bytes(raw) if isinstance(raw, bytes) else None

    async def put(self, tenant: str, answer: CachedAnswer, ttl_seconds: int) -> None:
        """Store the answer, mark it most recently used, and release waiters of its single flight."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(self._entry(answer.exact_key), answer.to_bytes(), ex=ttl_seconds)
            pipe.zadd(self._lru(tenant), {answer.exact_key: time.time()})
            pipe.delete(self._flight(answer.exact_key))
            await pipe.execute()

    async def put_many(self, tenant: str, answers: list[CachedAnswer], ttl_seconds: int) -> None:
        """Store several answers (an embeddings batch's vectors) in one round trip, most recently used."""
        now = time.time()
        async with self._redis.pipeline(transaction=False) as pipe:
            for answer in answers:
                pipe.set(self._entry(answer.exact_key), answer.to_bytes(), ex=ttl_seconds)
            pipe.zadd(self._lru(tenant), {answer.exact_key: now for answer in answers})
            await pipe.execute()

    async def delete(self, tenant: str, keys: list[str]) -> int:
        """Delete entries; returns how many Redis still held."""
        if not keys:
            return 0
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.delete(*(self._entry(k) for k in keys))
            pipe.zrem(self._lru(tenant), *keys)
            deleted, _ = await pipe.execute()
        return int(deleted)

    async def delete_tenants(self, tenant: str, key: str) -> int:
        """Delete one entry if it is the tenant's (in its LRU order, as every live entry is); returns 1 if so.

        For an entry only Redis may hold: its key alone does not say whose it is.
        """
        if await self._redis.zscore(self._lru(tenant), key) is None:
            return 0
        return await self.delete(tenant, [key])

    async def mark_redis_only(self, tenant: str, namespace: str, key: str | list[str], ttl_seconds: int) -> None:
        """Note an entry PostgreSQL does not hold (it refused the text, or was down) under its namespace:
        Redis keys do not carry one, and a namespace flush must not leave it answering until its TTL.
        The note lives as long as its longest-lived entry (EXPIREAT: no Redis 7 options); a stale one is
        harmless (deleting is idempotent)."""
        record = self._redis_only(tenant, namespace)
        now = time.time()
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zadd(record, dict.fromkeys([key] if isinstance(key, str) else key, now + ttl_seconds))
            pipe.zremrangebyscore(record, "-inf", now)
            pipe.zrange(record, -1, -1, withscores=True)  # the longest-lived entry noted
            *_, last = await pipe.execute()
        if last:
            await self._redis.expireat(record, int(last[0][1]) + 1)

    async def delete_redis_only(self, tenant: str, namespace: str) -> list[str]:
        """Delete the namespace's entries PostgreSQL does not hold; returns the keys Redis still held."""
        record = self._redis_only(tenant, namespace)
        return await self._delete_listed(tenant, record, also_from=record)

    async def delete_tenant(self, tenant: str) -> list[str]:
        """Delete every entry Redis holds for the tenant, whether PostgreSQL has a copy or not; returns
        the keys of the entries deleted (not those that had expired meanwhile).

        Entries PostgreSQL never saw (it was down, or refused the text) are only in Redis: a tenant
        flush must not leave them answering until their TTL.
        """
        literal = "".join("\\" + c if c in "*?[]\\" else c for c in self._redis_only(tenant, ""))
        notes = [key async for key in self._redis.scan_iter(match=literal + "*", count=1000)]
        if notes:
            await self._redis.delete(*notes)  # every entry they name is in the LRU order too
        return await self._delete_listed(tenant, self._lru(tenant))

    async def _delete_listed(self, tenant: str, listing: str, also_from: str | None = None) -> list[str]:
        """Delete the entries a sorted set lists, in chunks, and take them out of the tenant's LRU order
        (and `also_from`); returns the keys Redis still held."""
        members: list[bytes] = await self._redis.zrange(listing, 0, -1)  # type: ignore[assignment]
        keys = [member.decode() for member in members]
        deleted = []
        for start in range(0, len(keys), DELETE_CHUNK):
            chunk = keys[start : start + DELETE_CHUNK]
            async with self._redis.pipeline(transaction=False) as pipe:
                for key in chunk:
                    pipe.delete(self._entry(key))
                pipe.zrem(self._lru(tenant), *chunk)
                if also_from is not None:
                    pipe.zrem(also_from, *chunk)
                held = (await pipe.execute())[: len(chunk)]
            deleted += [key for key, count in zip(chunk, held, strict=True) if count]
        return deleted

    async def touch(self, used: dict[str, dict[str, float]]) -> None:
        """Move used entries up the LRU order (tenant -> key -> last use); only keys still tracked."""
        if not used:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for tenant, keys in used.items():
                pipe.zadd(self._lru(tenant), keys, xx=True)
            await pipe.execute()

    async def over_cap(self, tenant: str, cap: int) -> list[str]:
        """Take the least recently used keys out of the tenant's LRU order until it holds `cap`."""
        excess = int(await self._redis.zcard(self._lru(tenant))) - cap
        if excess <= 0:
            return []
        popped: list[tuple[bytes, float]] = await self._redis.zpopmin(self._lru(tenant), excess)  # type: ignore[assignment]
        return [member.decode() for member, _ in popped]

    async def forget(self, tenant: str, keys: list[str]) -> None:
        """Drop keys from the LRU order (their entries expired)."""
        if keys:
            await self._redis.zrem(self._lru(tenant), *keys)

    async def lead_flight(self, key: str, request_id: str, ttl_seconds: float) -> bool:
        """Become the one request that calls the upstream for this key; False if another already is."""
        return bool(await self._redis.set(self._flight(key), request_id, nx=True, px=max(int(ttl_seconds * 1000), 1)))

    async def end_flight(self, key: str) -> None:
        await self._redis.delete(self._flight(key))

    async def wait_for_flight(self, key: str, timeout: float) -> CachedAnswer | None:
        """Wait (bounded) for the leader's answer; None if the flight ended without one or took too long."""
        deadline = time.monotonic() + timeout
        delay = 0.005
        while time.monotonic() < deadline:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.get(self._entry(key))
                pipe.exists(self._flight(key))
                raw, flying = await pipe.execute()
            if isinstance(raw, bytes):
                return CachedAnswer.from_bytes(raw)
            if not flying:
                return None
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.1)
        return None

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except Exception:
            return False


class _GetBatcher:
    """GETs asked for in the same turn of the event loop, sent as one MGET at the end of that turn."""

    def __init__(self, client: redis.Redis) -> None:
        self._redis = client
        self._waiting: dict[str, list[asyncio.Future[bytes | None]]] = {}
        self._sending: set[asyncio.Task[None]] = set()  # the loop holds tasks weakly: keep them till done

    def get(self, name: str) -> asyncio.Future[bytes | None]:
        loop = asyncio.get_running_loop()
        if not self._waiting:
            loop.call_soon(self._send)
        future: asyncio.Future[bytes | None] = loop.create_future()
        self._waiting.setdefault(name, []).append(future)
        return future

    def _send(self) -> None:
        waiting, self._waiting = self._waiting, {}
        task = asyncio.get_running_loop().create_task(self._mget(waiting))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _mget(self, waiting: dict[str, list[asyncio.Future[bytes | None]]]) -> None:
        names = list(waiting)
        try:
            values = await self._redis.mget(names)
        except BaseException as exc:
            for futures in waiting.values():
                for future in futures:
                    if not future.done():
                        future.set_exception(exc if isinstance(exc, Exception) else ConnectionError(str(exc)))
            if not isinstance(exc, Exception):
                raise
            return
        for name, value in zip(names, values, strict=True):
            for future in waiting[name]:
                if not future.done():  # its caller may have been cancelled
                    future.set_result(value if isinstance(value, bytes) else None)
