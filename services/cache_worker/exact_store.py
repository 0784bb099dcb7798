"""The exact cache in Redis: answers under their exact key (with Redis TTLs), the per-tenant LRU
order, and the single flights that make concurrent identical misses call the upstream once.

Lookups that arrive together share one MGET: under load a round trip per hit, each on its own
pooled connection, was a sixth of the cache worker's time.

A single flight is a lease, `flight:<key>` holding the leader's request id, that lapses unless the
leader renews it. Identical requests that arrive meanwhile don't wait in a worker: each is noted
(its request and where its reply goes) on the key's waiter list, and its message acked. Storing the
answer hands the list to the storer, which answers them; a flight that ends without an answer hands
it over to be sent upstream; a lease that lapsed (its leader died) hands it to the sweeper, which
sends them back through the lookup, where one of them takes the lead. `flight_leases` orders the
flights that have waiters by when their lease lapses, for the sweeper; a flight that ended stays in it
until its waiters are handed over (`waiters_done`), so that waiters whose storer never answered them
(it died, or Redis's reply was lost) are the sweeper's, not nobody's.
"""

from __future__ import annotations

import asyncio
import time

import redis.asyncio as redis

from services.cache_worker.entries import CachedAnswer

# Keys per DEL command when a whole tenant is flushed.
DELETE_CHUNK = 1000
# Lapsed flights taken over per sweep.
SWEEP_BATCH = 100
# How long the storer of an answer (or of a flight's end) has to hand its waiters over before the sweeper does.
HAND_OVER_SECONDS = 10.0
# What lead_flight answers.
FOLLOWING, LEADING, STORED, OURS = 0, 1, 2, 3

# KEYS[1] flight, KEYS[2] entry. ARGV[1] request id, ARGV[2] lease ms, ARGV[3] "1": even if an answer is stored.
# 2 when an answer is stored (no flight taken: it answers); else lead when nobody does: 1; 3 when the flight is
# ours already (our lookup redelivered after its worker died: it may or may not have handed the request on);
# else 0.
LEAD_SCRIPT = """
if ARGV[3] ~= '1' and redis.call('EXISTS', KEYS[2]) == 1 then
    return 2
end
local leader = redis.call('GET', KEYS[1])
if not leader then
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
    return 1
end
if leader == ARGV[1] then
    return 3
end
return 0
"""

# KEYS[1] flight, KEYS[2] waiters, KEYS[3] leases. ARGV[1] waiter, ARGV[2] its ms to its deadline, ARGV[3] key.
# Note a waiter while the flight lasts (1); 0 when there is no flight any more (its answer may be stored).
FOLLOW_SCRIPT = """
local lease = redis.call('PTTL', KEYS[1])
if lease <= 0 then
    return 0
end
redis.call('RPUSH', KEYS[2], ARGV[1])
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[2]) then
    redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
local now = redis.call('TIME')
redis.call('ZADD', KEYS[3], tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) + lease, ARGV[3])
return 1
"""

# KEYS[1] flight, KEYS[2] leases. ARGV[1] request id, ARGV[2] lease ms, ARGV[3] key. Extend our lease: 1; 0 when
# the flight is not ours (it ended, or lapsed and was taken over).
RENEW_SCRIPT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
    return 0
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
local now = redis.call('TIME')
redis.call('ZADD', KEYS[2], 'XX', tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) + ARGV[2], ARGV[3])
return 1
"""

# What ends a flight and hands its waiters to the caller (HAND_OVER): waiters read, not removed (`waiters_done`
# removes them), and the flight left in the leases' order HAND_OVER_SECONDS ahead, so that should the caller never
# hand them over (it died, or the reply was lost), the sweeper does. ARGV[1] key, ARGV[2] ms; KEYS[1] waiters,
# KEYS[2] leases (placed last in each script's KEYS).
HAND_OVER = """
local waiters = redis.call('LRANGE', KEYS[#KEYS - 1], 0, -1)
if #waiters > 0 then
    local now = redis.call('TIME')
    local at = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) + tonumber(ARGV[#ARGV])
    redis.call('ZADD', KEYS[#KEYS], at, ARGV[#ARGV - 1])
else
    redis.call('ZREM', KEYS[#KEYS], ARGV[#ARGV - 1])
end
return waiters
"""

# KEYS[1] entry, KEYS[2] LRU order, KEYS[3] flight, then waiters, leases. ARGV[1] answer, ARGV[2] TTL seconds,
# ARGV[3] LRU score, then key, hand-over ms. Store the answer, most recently used, and end its flight (in this order:
# a request that finds no flight any more finds the answer); returns the waiters.
PUT_SCRIPT = (
    """
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
redis.call('DEL', KEYS[3])
"""
    + HAND_OVER
)

# KEYS[1] flight, then waiters, leases. ARGV[1] request id ("": any), then key, hand-over ms. End the flight
# unless another leader holds it now; returns its waiters.
END_SCRIPT = (
    """
local leader = redis.call('GET', KEYS[1])
if leader and ARGV[1] ~= '' and leader ~= ARGV[1] then
    return {}
end
redis.call('DEL', KEYS[1])
"""
    + HAND_OVER
)

# KEYS[1] waiters, KEYS[2] flight, KEYS[3] leases. ARGV[1] how many were handed over, ARGV[2] key. Take them off
# the list; the flight leaves the leases' order once nothing is left to hand over (and no new flight is on).
DONE_SCRIPT = """
redis.call('LTRIM', KEYS[1], ARGV[1], -1)
if redis.call('EXISTS', KEYS[2]) == 0 and redis.call('LLEN', KEYS[1]) == 0 then
    redis.call('ZREM', KEYS[3], ARGV[2])
end
"""

# KEYS[1] flight, KEYS[2] waiters, KEYS[3] leases. ARGV[1] key. Take a lapsed flight's waiters over (and remove
# them: one sweeper gets them); a flight renewed meanwhile is put back in order instead.
CLAIM_SCRIPT = """
local lease = redis.call('PTTL', KEYS[1])
if lease > 0 then
    local now = redis.call('TIME')
    redis.call('ZADD', KEYS[3], tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) + lease, ARGV[1])
    return {}
end
redis.call('ZREM', KEYS[3], ARGV[1])
local waiters = redis.call('LRANGE', KEYS[2], 0, -1)
redis.call('DEL', KEYS[2])
return waiters
"""


class ExactStore:
    """Redis-backed exact cache."""

    def __init__(self, client: redis.Redis, prefix: str, hand_over_seconds: float = HAND_OVER_SECONDS) -> None:
        self._redis = client
        self._prefix = prefix
        self._hand_over_ms = _ms(hand_over_seconds)
        self._gets = _GetBatcher(client)
        self._put = client.register_script(PUT_SCRIPT)
        self._done = client.register_script(DONE_SCRIPT)
        self._lead = client.register_script(LEAD_SCRIPT)
        self._follow = client.register_script(FOLLOW_SCRIPT)
        self._renew = client.register_script(RENEW_SCRIPT)
        self._end = client.register_script(END_SCRIPT)
        self._claim = client.register_script(CLAIM_SCRIPT)

    def _entry(self, key: str) -> str:
        return f"{self._prefix}:exact:{key}"

    def _lru(self, tenant: str) -> str:
        return f"{self._prefix}:lru:{tenant}"

    def _redis_only(self, tenant: str, namespace: str) -> str:
        return f"{self._prefix}:redis_only:{tenant}:{namespace}"

    def _flight(self, key: str) -> str:
        return f"{self._prefix}:flight:{key}"

    def _waiters(self, key: str) -> str:
        return f"{self._prefix}:flight_waiters:{key}"

    def _pending(self, key: str) -> str:
        return f"{self._prefix}:pending_store:{key}"

    @property
    def _leases(self) -> str:
        return f"{self._prefix}:flight_leases"

    async def get(self, key: str) -> CachedAnswer | None:
        raw = await self._gets.get(self._entry(key))
        return CachedAnswer.from_bytes(raw) if isinstance(raw, bytes) else None

    async def put(self, tenant: str, answer: CachedAnswer, ttl_seconds: int) -> list[bytes]:
        """Store the answer, mark it most recently used and end its single flight; returns the flight's
        waiters, for the caller to answer (then `waiters_done`).

        In this order: a request that finds no flight any more finds the answer. One script: should its
        reply be lost, the waiters are still the sweeper's to hand over (HAND_OVER_SECONDS later)."""
        key = answer.exact_key
        keys = [self._entry(key), self._lru(tenant), self._flight(key), self._waiters(key), self._leases]
        args: list[bytes | str | int | float] = [answer.to_bytes(), ttl_seconds, time.time(), key, self._hand_over_ms]
        return list(await self._put(keys=keys, args=args))

    async def keep_pending(self, key: str, pending: bytes, ttl_seconds: float) -> None:
        """Keep what storing the answer to come under `key` will need (entries.PendingStore), for a while."""
        await self._redis.set(self._pending(key), pending, px=_ms(ttl_seconds))

    async def pending(self, key: str) -> bytes | None:
        raw = await self._redis.get(self._pending(key))
        return raw if isinstance(raw, bytes) else None

    async def forget_pending(self, key: str) -> None:
        await self._redis.delete(self._pending(key))

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

    async def owns(self, tenant: str, key: str) -> bool:
        """Whether Redis lists the entry under this tenant (its LRU order holds every key it stores)."""
        return await self._redis.zscore(self._lru(tenant), key) is not None

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

    async def lead_flight(self, key: str, request_id: str, lease_seconds: float, even_if_stored: bool = False) -> int:
        """Become the one request that calls the upstream for this key, for a lease it must renew: LEADING;
        FOLLOWING if another request leads; OURS if this request does already (its lookup redelivered
        after its worker died); STORED if the key's answer is stored by now (no flight taken: unless
        `even_if_stored`)."""
        keys = [self._flight(key), self._entry(key)]
        return int(await self._lead(keys=keys, args=[request_id, _ms(lease_seconds), "1" if even_if_stored else "0"]))

    async def follow_flight(self, key: str, waiter: bytes, wait_seconds: float) -> bool:
        """Note a request on the flight's waiter list (kept `wait_seconds` at least); False if no flight is on."""
        keys = [self._flight(key), self._waiters(key), self._leases]
        return bool(await self._follow(keys=keys, args=[waiter, _ms(wait_seconds), key]))

    async def renew_flight(self, key: str, request_id: str, lease_seconds: float) -> bool:
        """Extend the leader's lease; False when the flight is not its own any more."""
        keys = [self._flight(key), self._leases]
        return bool(await self._renew(keys=keys, args=[request_id, _ms(lease_seconds), key]))

    async def end_flight(self, key: str, request_id: str | None = None) -> list[bytes]:
        """End a flight that produced no answer to store (unless another leader took it over); returns its
        waiters, for the caller to send on (then `waiters_done`)."""
        keys = [self._flight(key), self._waiters(key), self._leases]
        return list(await self._end(keys=keys, args=[request_id or "", key, self._hand_over_ms]))

    async def waiters_done(self, key: str, count: int) -> None:
        """Take the first `count` waiters, answered or sent on, off the key's list (later ones stay)."""
        if count:
            await self._done(keys=[self._waiters(key), self._flight(key), self._leases], args=[count, key])

    async def lapsed_flights(self) -> list[tuple[str, list[bytes]]]:
        """Take over the waiters of flights whose lease lapsed (their leader died): (key, waiters) each. A
        failure after some were taken over returns those (the others are taken over by a later sweep)."""
        seconds, microseconds = await self._redis.time()  # Redis's clock, as the leases were written by
        now_ms = int(seconds) * 1000 + int(microseconds) // 1000
        lapsed: list[bytes] = await self._redis.zrangebyscore(self._leases, "-inf", now_ms, start=0, num=SWEEP_BATCH)  # type: ignore[assignment]
        taken: list[tuple[str, list[bytes]]] = []
        for member in lapsed:
            key = member.decode()
            try:
                waiters = await self._claim(keys=[self._flight(key), self._waiters(key), self._leases], args=[key])
            except Exception:
                if not taken:
                    raise
                break  # those taken over already are no longer in Redis: they must reach the caller
            if waiters:
                taken.append((key, list(waiters)))
        return taken

    async def put_back_waiters(self, key: str, waiters: list[bytes], wait_seconds: float) -> None:
        """Note taken-over waiters again (their resending failed): the next sweep takes them over again."""
        if not waiters:
            return
        seconds, microseconds = await self._redis.time()
        now_ms = int(seconds) * 1000 + int(microseconds) // 1000
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.rpush(self._waiters(key), *waiters)
            pipe.pexpire(self._waiters(key), _ms(wait_seconds))
            pipe.zadd(self._leases, {key: now_ms})
            await pipe.execute()

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


def _ms(seconds: float) -> int:
    return max(int(seconds * 1000), 1)
