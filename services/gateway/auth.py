"""Who is calling: the tenant behind a request's API key, and whether it may use the admin API.

A bearer key is looked up by its SHA-256 (`api_key_hash`): first in this process's cache, which
holds answers for a few seconds (unknown keys apart from valid ones, so a spray of random keys
can't push valid keys and their stale-if-error answers out), then, on a miss, by a ResolveKey RPC
to the tenants service; concurrent misses for one key share that RPC. A client address whose keys
keep failing has the keys it sends refused (429) before any look-up for a minute (`FailedAuthentications`),
except keys this gateway knows to be valid: a NAT's other clients keep working. Revocations reach every
gateway process at once through the KeyRevoked fanout (`start_revocation_listener`); the cache's
TTL bounds how long a missed notice (a broker reconnect, which also clears the cache) can matter.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

from fastapi import Request

from services.gateway.errors import ApiError
from services.gateway.metrics import AUTH_REFUSED, KEY_RESOLUTIONS, KEYS_REVOKED
from services.gateway.settings import Settings
from shared.contracts.tenants import KeyInfo, KeyResolution, KeyRevoked, ResolveKey, api_key_hash
from shared.rpc import RpcClient
from shared.topology import Topology
from shared.worker import Worker

log = logging.getLogger(__name__)

Fetch = Callable[[str], Coroutine[Any, Any, KeyInfo | None]]


@dataclass(frozen=True)
class Principal:
    """The caller of a request, as far as the gateway knows."""

    tenant: str
    key_id: str | None = None
    allowed_models: frozenset[str] = field(default_factory=frozenset)  # empty: any model
    rpm_limit: int | None = None  # None: no limit
    tokens_per_day: int | None = None  # None: no limit
    is_admin: bool = False

    @classmethod
    def from_key(cls, info: KeyInfo) -> Principal:
        """The principal of a valid key, as the tenants service described it."""
        return cls(
            tenant=info.tenant,
            key_id=info.key_id,
            allowed_models=frozenset(info.allowed_models or ()),
            rpm_limit=info.rpm_limit,
            tokens_per_day=info.tokens_per_day,
        )


class KeysUnavailable(Exception):
    """The tenants service could not say whether a key is valid."""


@dataclass(frozen=True)
class CachedKey:
    """One cached answer: `info` is None for a key that is unknown or revoked."""

    info: KeyInfo | None
    expires_at: float


class KeyCache:
    """Answers about keys by hash for `ttl_seconds`: valid keys (at most `max_entries`) and unknown or
    revoked ones (at most `max_unknown`) kept apart, each bounded on its own, so that any number of
    unknown keys never pushes a valid one out.

    Every entry lives equally long, so insertion order is expiry order: the oldest entry goes
    first when its side is full. `evict` bumps a generation so that a look-up which was already
    in flight when a key was revoked does not put the key back.
    """

    def __init__(
        self,
        ttl_seconds: float,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
        max_unknown: int = 10_000,
    ) -> None:
        if ttl_seconds < 0 or max_entries < 1 or max_unknown < 1:
            raise ValueError("ttl_seconds must be >= 0, max_entries and max_unknown >= 1")
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self.max_unknown = max_unknown
        self._clock = clock
        self._entries: OrderedDict[str, CachedKey] = OrderedDict()  # valid keys
        self._unknown: OrderedDict[str, CachedKey] = OrderedDict()  # unknown and revoked keys
        self._pending: dict[str, asyncio.Task[KeyInfo | None]] = {}
        self._generation = 0

    def __len__(self) -> int:
        return len(self._entries) + len(self._unknown)

    @property
    def generation(self) -> int:
        """Bumped by every eviction: a look-up started before it must not cache its answer."""
        return self._generation

    def get(self, key_hash: str) -> CachedKey | None:
        """The live entry for a key, or None (never cached, or expired)."""
        entry = self._entries.get(key_hash) or self._unknown.get(key_hash)
        if entry is None or entry.expires_at <= self._clock():
            return None
        return entry

    def stale(self, key_hash: str, max_stale_seconds: float) -> KeyInfo | None:
        """A valid key's expired answer, at most `max_stale_seconds` past its TTL (stale-if-error).

        Expired entries stay until pushed out by newer ones; a revoked key is evicted, never stale.
        """
        entry = self._entries.get(key_hash)
        if entry is None or entry.info is None or entry.expires_at + max_stale_seconds <= self._clock():
            return None
        return entry.info

    def known_valid(self, key_hash: str) -> bool:
        """Whether the key's last answer said valid, however long ago (it is evicted when revoked)."""
        return key_hash in self._entries

    def put(self, key_hash: str, info: KeyInfo | None, generation: int | None = None) -> bool:
        """Cache an answer; skipped (False) when keys were evicted since `generation` was read."""
        if generation is not None and generation != self._generation:
            return False
        self._entries.pop(key_hash, None)
        self._unknown.pop(key_hash, None)
        side, bound = (self._entries, self.max_entries) if info is not None else (self._unknown, self.max_unknown)
        side[key_hash] = CachedKey(info, self._clock() + self.ttl_seconds)
        while len(side) > bound:
            side.popitem(last=False)
        return True

    def evict(self, key_hash: str) -> None:
        """Forget a key now (it was revoked); a look-up already in flight is not joined by later callers."""
        self._generation += 1
        self._entries.pop(key_hash, None)
        self._unknown.pop(key_hash, None)
        self._pending.pop(key_hash, None)

    def clear(self) -> None:
        """Forget every key (notices may have been missed)."""
        self._generation += 1
        self._entries.clear()
        self._unknown.clear()
        self._pending.clear()

    async def resolve(self, key_hash: str, fetch: Fetch) -> tuple[KeyInfo | None, bool]:
        """The answer for a key and whether it came from the cache; one `fetch` per key at a time.

        The fetch runs as its own task: a caller that goes away does not cancel it for the others.
        """
        entry = self.get(key_hash)
        if entry is not None:
            return entry.info, True
        task = self._pending.get(key_hash)
        if task is None:
            task = asyncio.get_running_loop().create_task(fetch(key_hash))
            self._pending[key_hash] = task
            task.add_done_callback(self._settled(key_hash, self._generation))
        return await asyncio.shield(task), False

    def _settled(self, key_hash: str, generation: int) -> Callable[[asyncio.Task[KeyInfo | None]], None]:
        def done(task: asyncio.Task[KeyInfo | None]) -> None:
            if self._pending.get(key_hash) is task:
                del self._pending[key_hash]
            # exception() also marks a failure as seen when every waiter has gone.
            if not task.cancelled() and task.exception() is None:
                self.put(key_hash, task.result(), generation)

        return done


class FailedAuthentications:
    """Unknown keys per client address in a fixed window: an address past `limit` of them is refused (429)
    until its window ends, before any look-up. Bounded: the least recently failing addresses go first."""

    def __init__(
        self,
        limit: int,
        window_seconds: float = 60.0,
        max_addresses: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window_seconds = window_seconds
        self.max_addresses = max_addresses
        self._clock = clock
        self._windows: OrderedDict[str, tuple[float, int]] = OrderedDict()  # address -> (window start, failures)

    def retry_after(self, address: str) -> float | None:
        """Seconds until the address may try unknown keys again, or None if it may now."""
        window = self._windows.get(address)
        if self.limit <= 0 or window is None:
            return None
        started, failures = window
        left = started + self.window_seconds - self._clock()
        return left if failures >= self.limit and left > 0 else None

    def record(self, address: str) -> None:
        """One more unknown key from the address."""
        now = self._clock()
        started, failures = self._windows.pop(address, (now, 0))
        if now - started >= self.window_seconds:
            started, failures = now, 0
        self._windows[address] = (started, failures + 1)
        while len(self._windows) > self.max_addresses:
            self._windows.popitem(last=False)


class KeyAuthenticator:
    """Turns bearer keys into principals: the key cache, then a ResolveKey RPC to the tenants service."""

    def __init__(
        self,
        rpc: RpcClient,
        topology: Topology,
        *,
        required: bool,
        default_tenant: str,
        cache_ttl_seconds: float,
        cache_max_entries: int = 100_000,
        timeout_seconds: float = 2.0,
        stale_if_error_seconds: float = 3600.0,
        cache_max_unknown: int = 10_000,
        failures_per_minute: int = 30,
    ) -> None:
        self.rpc = rpc
        self.topology = topology
        self.required = required
        self.default_tenant = default_tenant
        self.timeout_seconds = timeout_seconds
        self.stale_if_error_seconds = stale_if_error_seconds
        self.cache = KeyCache(cache_ttl_seconds, cache_max_entries, max_unknown=cache_max_unknown)
        self.failures = FailedAuthentications(failures_per_minute)

    async def authenticate(self, token: str | None, address: str | None = None) -> Principal:
        """The principal behind a bearer token, or ApiError 401 (missing or invalid key) / 503, or 429 when
        the client's address sent too many unknown keys lately and this key is not one known valid (a key
        known valid still works from it, checked again when its cached answer expired)."""
        if not self.required:
            return Principal(tenant=self.default_tenant)
        if token is None:
            raise ApiError(
                401,
                "Missing API key: send it as 'Authorization: Bearer <key>' (or 'x-api-key: <key>').",
                code="missing_api_key",
            )
        key_hash = api_key_hash(token)
        known = self.cache.get(key_hash)
        if known is not None and known.info is not None:
            KEY_RESOLUTIONS.labels("cache", "valid").inc()
            return Principal.from_key(known.info)
        wait = self.failures.retry_after(address) if address is not None else None
        # Only keys this gateway does not know to be valid are refused: one that shares its address (a NAT)
        # with a client spraying random keys is checked as usual when its cached answer has expired.
        if wait is not None and not self.cache.known_valid(key_hash):
            AUTH_REFUSED.inc()
            raise ApiError(
                429,
                "Too many requests with unknown API keys from this address; retry later.",
                code="too_many_failed_authentications",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
        try:
            info, cached = await self.cache.resolve(key_hash, self._fetch)
        except KeysUnavailable as exc:
            # A key this gateway knew to be valid stays usable while keys can't be checked (the tenants
            # service or its database down): the proxy keeps answering, as it does without Redis.
            stale = self.cache.stale(key_hash, self.stale_if_error_seconds)
            if stale is not None:
                KEY_RESOLUTIONS.labels("stale", "valid").inc()
                return Principal.from_key(stale)
            KEY_RESOLUTIONS.labels("tenants", "unavailable").inc()
            raise ApiError(
                503,
                "API keys cannot be checked right now; retry shortly.",
                code="auth_unavailable",
                headers={"Retry-After": "1"},
            ) from exc
        KEY_RESOLUTIONS.labels("cache" if cached else "tenants", "valid" if info else "invalid").inc()
        if info is None:
            if address is not None:
                self.failures.record(address)
            raise ApiError(401, "Invalid API key (unknown or revoked).", code="invalid_api_key")
        return Principal.from_key(info)

    async def _fetch(self, key_hash: str) -> KeyInfo | None:
        try:
            result = await self.rpc.call(
                self.topology.tenants_rpc, ResolveKey(key_hash=key_hash), KeyResolution, self.timeout_seconds
            )
        except Exception as exc:  # no answer, an error answer or a broker failure: all mean "can't tell"
            log.warning("resolving an API key failed: %s", type(exc).__name__)
            raise KeysUnavailable(str(exc)) from exc
        return result.key

    async def on_revoked(self, body: bytes) -> None:
        """Act on a KeyRevoked notice (an unreadable one raises and is logged by the subscriber)."""
        notice = KeyRevoked.model_validate_json(body)
        self.cache.evict(notice.key_hash)
        KEYS_REVOKED.inc()
        log.info("key %s of tenant %s revoked: dropped from the key cache", notice.key_id, notice.tenant)

    def on_reconnect(self, *_: Any) -> None:
        """The broker connection came back: notices may have been missed while it was down."""
        self.cache.clear()
        log.info("broker reconnected: key cache cleared")


class AuthHost(Protocol):
    """What the revocation listener needs of the gateway's state (GatewayState has it)."""

    @property
    def worker(self) -> Worker: ...

    @property
    def topology(self) -> Topology: ...

    @property
    def auth(self) -> KeyAuthenticator: ...


async def start_revocation_listener(state: AuthHost) -> None:
    """Hear KeyRevoked on a queue of this process's own (exclusive, auto-delete); call once at startup."""
    await state.worker.subscribe(state.topology.key_revocations, state.auth.on_revoked)
    assert state.worker.connection is not None
    state.worker.connection.reconnect_callbacks.add(state.auth.on_reconnect)


def bearer_token(request: Request) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, else of an `x-api-key` header (as the
    anthropic SDK sends its key), if there is one."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    api_key = request.headers.get("x-api-key", "").strip()
    return api_key or None


async def authenticate(request: Request) -> Principal:
    """FastAPI dependency of the API routes: the caller's principal, or 401 / 503 (the request gate's
    answer when it already authenticated the request)."""
    known: Principal | None = getattr(request.state, "principal", None)
    if known is not None:
        return known
    authenticator: KeyAuthenticator = request.app.state.gateway.auth
    return await authenticator.authenticate(bearer_token(request), client_address(request))


def client_address(request: Request) -> str | None:
    """The client's address: the peer's, or from X-Forwarded-For when the peer is a trusted proxy (addresses.py)."""
    if request.client is None:
        return None
    peer = request.client.host
    proxies = request.app.state.gateway.settings.trusted_proxies()
    return proxies.client_of(peer, request.headers.getlist("x-forwarded-for"))


def authorize_model(principal: Principal, model: str) -> None:
    """403 when the caller's key is limited to other models."""
    if principal.allowed_models and model not in principal.allowed_models:
        raise ApiError(
            403,
            f"This API key may not use the model '{model}'.",
            code="model_not_allowed",
            param="model",
        )


ADMIN = Principal(tenant="*", is_admin=True)


def is_admin_key(request: Request) -> bool:
    """Whether the request presents the admin API key (never, when none is set)."""
    admin_key = request.app.state.gateway.settings.admin_api_key.get_secret_value()
    token = bearer_token(request)
    return bool(admin_key) and token is not None and hmac.compare_digest(token.encode(), admin_key.encode())


class AdminHost(Protocol):
    """What the admin check needs of the gateway's state (GatewayState has it)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def auth(self) -> KeyAuthenticator: ...


async def require_admin(request: Request) -> Principal:
    """FastAPI dependency of every admin endpoint: the admin key from settings, or 401/403."""
    state: AdminHost = request.app.state.gateway
    token = bearer_token(request)
    if not state.settings.admin_api_key.get_secret_value():
        raise ApiError(403, "The admin API is disabled: set ADMIN_API_KEY.", code="admin_disabled")
    if token is None:
        raise ApiError(401, "Missing admin API key (Authorization: Bearer ...).", code="missing_api_key")
    if not is_admin_key(request):
        # A tenant's key is refused (403); a key that is nobody's is invalid (401), as on the API routes.
        try:
            await state.auth.authenticate(token, client_address(request))
        except ApiError as exc:
            if exc.status == 401:
                raise ApiError(
                    401, "Invalid API key (not the admin key, nor a known key).", code="invalid_api_key"
                ) from None
        raise ApiError(403, "This key may not use the admin API.", code="not_admin")
    return ADMIN
