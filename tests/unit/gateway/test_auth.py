"""Gateway authentication without a broker: key hashing, the TTL key cache, errors, revocation notices."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pydantic
import pytest
from pydantic import SecretStr
from starlette.requests import Request

from services.gateway.auth import (
    FailedAuthentications,
    KeyAuthenticator,
    KeyCache,
    Principal,
    authenticate,
    authorize_model,
    bearer_token,
    client_address,
    require_admin,
)
from services.gateway.errors import ApiError
from services.gateway.settings import Settings
from shared.contracts.tenants import KeyInfo, KeyResolution, KeyRevoked, ResolveKey, api_key_hash
from shared.rpc import RpcTimeout
from shared.topology import Topology

KEY = "lcp-" + "k" * 40
KEY_ID = "0b6f4c0e-8f57-4a39-9d0f-6c1f4f2b9a11"
INFO = KeyInfo(key_id=KEY_ID, tenant="acme", rpm_limit=60, tokens_per_day=1000, allowed_models=["m1"])


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeRpc:
    """Answers ResolveKey from a dict of hashes; counts the calls; can be slow or fail."""

    def __init__(self, keys: dict[str, KeyInfo] | None = None, fail: Exception | None = None) -> None:
        self.keys = keys if keys is not None else {api_key_hash(KEY): INFO}
        self.fail = fail
        self.calls: list[str] = []
        self.gate: asyncio.Event | None = None

    async def call(self, routing_key: str, request: ResolveKey, result_type: type, timeout: float) -> KeyResolution:
        assert routing_key == "t.tenants.rpc" and result_type is KeyResolution
        self.calls.append(request.key_hash)
        answer = KeyResolution(key=self.keys.get(request.key_hash))  # answered now, heard back after the gate
        if self.gate is not None:
            await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        return answer


def authenticator(rpc: FakeRpc, *, required: bool = True, ttl: float = 5.0) -> KeyAuthenticator:
    return KeyAuthenticator(
        rpc,  # type: ignore[arg-type]
        Topology("t"),
        required=required,
        default_tenant="default",
        cache_ttl_seconds=ttl,
        timeout_seconds=1.0,
    )


def http_request(authorization: str | None, state: Any) -> Request:
    headers = [(b"authorization", authorization.encode())] if authorization is not None else []
    app = SimpleNamespace(state=SimpleNamespace(gateway=state))
    return Request({"type": "http", "method": "POST", "path": "/", "headers": headers, "app": app})


# --- the key cache ------------------------------------------------------------------------------


def test_the_cache_keeps_valid_and_invalid_answers_for_its_ttl() -> None:
    clock = Clock()
    cache = KeyCache(5.0, clock=clock)
    cache.put("valid", INFO)
    cache.put("invalid", None)
    entry = cache.get("invalid")
    assert entry is not None and entry.info is None  # a cached "no", not a miss
    assert cache.get("valid") is not None
    clock.now += 4.9
    assert cache.get("valid") is not None
    clock.now += 0.2
    assert cache.get("valid") is None and cache.get("invalid") is None


def test_a_known_valid_key_outlives_its_ttl_only_as_a_stale_fallback() -> None:
    clock = Clock()
    cache = KeyCache(5.0, clock=clock)
    cache.put("valid", INFO)
    cache.put("invalid", None)
    clock.now += 60
    assert cache.get("valid") is None  # never served as fresh
    assert cache.stale("valid", max_stale_seconds=3600) == INFO
    assert cache.stale("invalid", max_stale_seconds=3600) is None  # a "no" is never a fallback
    assert cache.stale("valid", max_stale_seconds=30) is None
    cache.evict("valid")  # revoked: not even stale
    assert cache.stale("valid", max_stale_seconds=3600) is None


def test_the_cache_is_bounded_oldest_first_and_unknown_keys_never_push_valid_ones_out() -> None:
    cache = KeyCache(5.0, max_entries=3, max_unknown=2)
    for name in "abcd":
        cache.put(name, INFO)
    assert [name for name in "abcd" if cache.get(name)] == ["b", "c", "d"]
    cache.put("b", INFO)  # refreshed: now the newest
    cache.put("e", INFO)
    assert [name for name in "bcde" if cache.get(name)] == ["b", "d", "e"]
    for i in range(100):  # a spray of unknown keys
        cache.put(f"random-{i}", None)
    assert [name for name in "bde" if cache.get(name)] == ["b", "d", "e"]
    assert len(cache) == 5 and cache.get("random-99") is not None and cache.get("random-97") is None


def test_an_eviction_stops_an_older_lookup_from_putting_the_key_back() -> None:
    cache = KeyCache(5.0)
    generation = cache.generation
    cache.evict("k")
    assert cache.put("k", INFO, generation) is False
    assert cache.get("k") is None
    assert cache.put("k", INFO, cache.generation) is True
    cache.clear()
    assert cache.get("k") is None


def test_a_bad_cache_configuration_is_refused() -> None:
    with pytest.raises(ValueError):
        KeyCache(-1)
    with pytest.raises(ValueError):
        KeyCache(5, max_entries=0)


async def test_concurrent_misses_for_one_key_share_one_lookup() -> None:
    rpc = FakeRpc()
    rpc.gate = asyncio.Event()
    auth = authenticator(rpc)
    waiting = [asyncio.create_task(auth.authenticate(KEY)) for _ in range(20)]
    await asyncio.sleep(0.01)
    rpc.gate.set()
    principals = await asyncio.gather(*waiting)
    assert len(rpc.calls) == 1
    assert {p.tenant for p in principals} == {"acme"}


async def test_a_caller_going_away_does_not_cancel_the_lookup_for_the_others() -> None:
    rpc = FakeRpc()
    rpc.gate = asyncio.Event()
    auth = authenticator(rpc)
    first = asyncio.create_task(auth.authenticate(KEY))
    second = asyncio.create_task(auth.authenticate(KEY))
    await asyncio.sleep(0.01)
    first.cancel()
    rpc.gate.set()
    assert (await second).tenant == "acme"
    with pytest.raises(asyncio.CancelledError):
        await first
    assert len(rpc.calls) == 1
    assert auth.cache.get(api_key_hash(KEY)) is not None


async def test_a_lookup_in_flight_when_the_key_is_revoked_is_not_joined_or_cached() -> None:
    rpc = FakeRpc()
    rpc.gate = asyncio.Event()
    auth = authenticator(rpc)
    before = asyncio.create_task(auth.authenticate(KEY))
    await asyncio.sleep(0.01)
    rpc.keys = {}  # revoked while the first look-up is in flight
    await auth.on_revoked(
        KeyRevoked(key_id=KEY_ID, tenant="acme", key_hash=api_key_hash(KEY), revoked_at=1.0).model_dump_json().encode()
    )
    after = asyncio.create_task(auth.authenticate(KEY))
    await asyncio.sleep(0.01)
    rpc.gate.set()
    assert (await before).tenant == "acme"  # asked before the revocation
    with pytest.raises(ApiError) as raised:
        await after
    assert raised.value.code == "invalid_api_key"
    assert len(rpc.calls) == 2
    entry = auth.cache.get(api_key_hash(KEY))
    assert entry is not None and entry.info is None


# --- authenticate -------------------------------------------------------------------------------


async def test_a_valid_key_is_its_tenant_and_limits_and_is_cached() -> None:
    rpc = FakeRpc()
    auth = authenticator(rpc)
    principal = await auth.authenticate(KEY)
    assert principal == Principal(
        tenant="acme", key_id=KEY_ID, allowed_models=frozenset({"m1"}), rpm_limit=60, tokens_per_day=1000
    )
    assert await auth.authenticate(KEY) == principal
    assert rpc.calls == [api_key_hash(KEY)]  # the hash crosses the broker, never the key


async def test_a_missing_key_is_a_401() -> None:
    with pytest.raises(ApiError) as raised:
        await authenticator(FakeRpc()).authenticate(None)
    assert (raised.value.status, raised.value.code) == (401, "missing_api_key")


async def test_an_unknown_key_is_a_401_and_the_no_is_cached() -> None:
    rpc = FakeRpc()
    auth = authenticator(rpc)
    for _ in range(3):
        with pytest.raises(ApiError) as raised:
            await auth.authenticate("lcp-wrong")
        assert (raised.value.status, raised.value.code) == (401, "invalid_api_key")
        assert "lcp-wrong" not in raised.value.message
    assert len(rpc.calls) == 1


@pytest.mark.parametrize("failure", [RpcTimeout("no reply"), ConnectionError("broker gone")])
async def test_the_tenants_service_down_is_a_503_with_retry_after(failure: Exception) -> None:
    rpc = FakeRpc(fail=failure)
    auth = authenticator(rpc)
    with pytest.raises(ApiError) as raised:
        await auth.authenticate(KEY)
    assert raised.value.status == 503
    assert raised.value.headers["Retry-After"] == "1"
    rpc.fail = None  # a failure is not cached: the next request asks again
    assert (await auth.authenticate(KEY)).tenant == "acme"


async def test_a_key_known_to_be_valid_keeps_working_while_keys_cannot_be_checked() -> None:
    rpc = FakeRpc()
    auth = authenticator(rpc, ttl=0.0)  # every request asks the tenants service
    assert (await auth.authenticate(KEY)).tenant == "acme"
    rpc.fail = RpcTimeout("tenants down")
    assert (await auth.authenticate(KEY)).tenant == "acme"  # stale-if-error
    with pytest.raises(ApiError) as raised:  # a key never seen is still refused
        await auth.authenticate("lcp-" + "z" * 40)
    assert raised.value.status == 503


async def test_without_required_keys_every_request_is_the_default_tenant() -> None:
    rpc = FakeRpc()
    auth = authenticator(rpc, required=False)
    assert await auth.authenticate(None) == Principal(tenant="default")
    assert await auth.authenticate("anything") == Principal(tenant="default")
    assert rpc.calls == []


async def test_a_revocation_notice_evicts_the_key_at_once() -> None:
    rpc = FakeRpc()
    auth = authenticator(rpc)
    await auth.authenticate(KEY)
    rpc.keys = {}  # revoked in the tenants service
    notice = KeyRevoked(key_id=KEY_ID, tenant="acme", key_hash=api_key_hash(KEY), revoked_at=1.0)
    await auth.on_revoked(notice.model_dump_json().encode())
    with pytest.raises(ApiError) as raised:
        await auth.authenticate(KEY)
    assert raised.value.code == "invalid_api_key"


async def test_an_unreadable_notice_raises_for_the_subscriber_to_log() -> None:
    auth = authenticator(FakeRpc())
    with pytest.raises(pydantic.ValidationError):
        await auth.on_revoked(b'{"type": "key_revoked"}')


async def test_a_broker_reconnect_clears_the_cache() -> None:
    rpc = FakeRpc()
    auth = authenticator(rpc)
    await auth.authenticate(KEY)
    auth.on_reconnect(object())
    await auth.authenticate(KEY)
    assert len(rpc.calls) == 2


async def test_the_dependency_reads_the_bearer_header() -> None:
    rpc = FakeRpc()
    state = SimpleNamespace(auth=authenticator(rpc))
    assert (await authenticate(http_request(f"Bearer {KEY}", state))).tenant == "acme"
    with pytest.raises(ApiError) as raised:
        await authenticate(http_request(None, state))
    assert raised.value.code == "missing_api_key"


def test_bearer_token_parsing() -> None:
    assert bearer_token(http_request("Bearer abc", None)) == "abc"
    assert bearer_token(http_request("bearer   abc ", None)) == "abc"
    assert bearer_token(http_request("Basic abc", None)) is None
    assert bearer_token(http_request("Bearer ", None)) is None
    assert bearer_token(http_request(None, None)) is None


# --- models and the admin API -------------------------------------------------------------------


def test_a_key_limited_to_some_models_may_use_only_those() -> None:
    limited = Principal(tenant="acme", key_id=KEY_ID, allowed_models=frozenset({"m1", "m2"}))
    authorize_model(limited, "m1")
    with pytest.raises(ApiError) as raised:
        authorize_model(limited, "m3")
    assert (raised.value.status, raised.value.code, raised.value.param) == (403, "model_not_allowed", "model")
    authorize_model(Principal(tenant="acme"), "anything")  # no list: any model


class TenantKeys:
    """Knows one tenant key (KEY); keys can't be checked when `down`."""

    def __init__(self) -> None:
        self.down = False

    async def authenticate(self, token: str | None, address: str | None = None) -> Principal:
        if self.down:
            raise ApiError(503, "down", code="auth_unavailable")
        if token != KEY:
            raise ApiError(401, "Invalid API key (unknown or revoked).", code="invalid_api_key")
        return Principal(tenant="acme", key_id=KEY_ID)


async def test_the_admin_api_takes_the_admin_key_only() -> None:
    keys = TenantKeys()
    state = SimpleNamespace(settings=SimpleNamespace(admin_api_key=SecretStr("admin-secret")), auth=keys)
    assert (await require_admin(http_request("Bearer admin-secret", state))).is_admin
    with pytest.raises(ApiError) as tenant_key:
        await require_admin(http_request(f"Bearer {KEY}", state))
    assert (tenant_key.value.status, tenant_key.value.code) == (403, "not_admin")
    with pytest.raises(ApiError) as nobodys:
        await require_admin(http_request("Bearer lcp-garbage", state))
    assert (nobodys.value.status, nobodys.value.code) == (401, "invalid_api_key")
    keys.down = True  # keys can't be checked: still not the admin key
    with pytest.raises(ApiError) as unchecked:
        await require_admin(http_request("Bearer lcp-garbage", state))
    assert (unchecked.value.status, unchecked.value.code) == (403, "not_admin")
    with pytest.raises(ApiError) as missing:
        await require_admin(http_request(None, state))
    assert missing.value.status == 401
    state.settings.admin_api_key = SecretStr("")
    with pytest.raises(ApiError) as disabled:
        await require_admin(http_request("Bearer admin-secret", state))
    assert disabled.value.code == "admin_disabled"


def test_an_address_past_its_failures_is_refused_until_its_window_ends() -> None:
    now = [0.0]
    failures = FailedAuthentications(3, window_seconds=60.0, max_addresses=2, clock=lambda: now[0])
    for _ in range(3):
        assert failures.retry_after("a") is None
        failures.record("a")
    assert failures.retry_after("a") == 60.0 and failures.retry_after("b") is None
    now[0] = 59.5
    assert failures.retry_after("a") == 0.5
    now[0] = 60.0
    assert failures.retry_after("a") is None
    failures.record("a")  # a new window
    assert failures.retry_after("a") is None
    failures.record("b")
    failures.record("c")  # only two addresses are kept: "a" went first
    assert failures.retry_after("a") is None and len(failures._windows) == 2
    assert FailedAuthentications(0).retry_after("a") is None  # no limit


async def test_a_known_key_works_from_an_address_that_is_refused_and_unknown_ones_cost_no_lookup() -> None:
    rpc = FakeRpc({api_key_hash("good"): INFO})
    auth = KeyAuthenticator(
        rpc,  # type: ignore[arg-type]
        Topology("t"),
        required=True,
        default_tenant="default",
        cache_ttl_seconds=60,
        failures_per_minute=2,
    )
    assert (await auth.authenticate("good", "1.2.3.4")).tenant == INFO.tenant
    for token in ("x", "y"):
        with pytest.raises(ApiError) as unknown:
            await auth.authenticate(token, "1.2.3.4")
        assert unknown.value.status == 401
    calls = len(rpc.calls)
    with pytest.raises(ApiError) as refused:
        await auth.authenticate("z", "1.2.3.4")
    assert refused.value.status == 429 and int(refused.value.headers["Retry-After"]) >= 1
    assert len(rpc.calls) == calls  # no look-up for it
    assert (await auth.authenticate("good", "1.2.3.4")).tenant == INFO.tenant
    with pytest.raises(ApiError) as elsewhere:
        await auth.authenticate("z", "5.6.7.8")
    assert elsewhere.value.status == 401


async def test_a_valid_key_sharing_a_limited_address_still_works_after_its_answer_expired() -> None:
    """A NAT: one client sprays random keys, another behind the same address has a valid key."""
    clock = Clock()
    rpc = FakeRpc({api_key_hash("good"): INFO})
    auth = KeyAuthenticator(
        rpc,  # type: ignore[arg-type]
        Topology("t"),
        required=True,
        default_tenant="default",
        cache_ttl_seconds=5,
        failures_per_minute=2,
    )
    auth.cache = KeyCache(5.0, clock=clock)
    assert (await auth.authenticate("good", "198.51.100.1")).tenant == INFO.tenant
    for token in ("x", "y"):
        with pytest.raises(ApiError):
            await auth.authenticate(token, "198.51.100.1")
    clock.now += 10  # the valid key's answer expired; the address is still limited
    assert (await auth.authenticate("good", "198.51.100.1")).tenant == INFO.tenant
    assert rpc.calls[-1] == api_key_hash("good")  # checked again, not taken on trust
    calls = len(rpc.calls)
    with pytest.raises(ApiError) as refused:
        await auth.authenticate("z", "198.51.100.1")
    assert refused.value.status == 429 and len(rpc.calls) == calls
    auth.cache.evict(api_key_hash("good"))  # revoked: no longer known valid
    with pytest.raises(ApiError) as revoked:
        await auth.authenticate("good", "198.51.100.1")
    assert revoked.value.status == 429


def address_of(peer: str, forwarded_for: list[str], trusted: str) -> str | None:
    settings = SimpleNamespace(trusted_proxies=lambda: Settings(forwarded_allow_ips=trusted).trusted_proxies())
    app = SimpleNamespace(state=SimpleNamespace(gateway=SimpleNamespace(settings=settings)))
    headers = [(b"x-forwarded-for", value.encode()) for value in forwarded_for]
    return client_address(Request({"type": "http", "headers": headers, "client": (peer, 1234), "app": app}))


def test_x_forwarded_for_is_believed_only_from_the_configured_proxies() -> None:
    # By default no proxy is trusted: a client naming another address (to escape the limit, or to get
    # another address limited) is counted by its own.
    assert address_of("127.0.0.1", ["203.0.113.7"], "") == "127.0.0.1"
    assert address_of("198.51.100.1", ["203.0.113.7"], "10.0.0.0/8") == "198.51.100.1"
    # Behind the proxy, the address it saw; what the client wrote to the left of it is not believed.
    assert address_of("10.1.2.3", ["6.6.6.6, 203.0.113.7"], "10.0.0.0/8") == "203.0.113.7"
    assert address_of("10.1.2.3", ["6.6.6.6", "203.0.113.7:5151, 10.9.9.9"], "10.0.0.0/8") == "203.0.113.7"
    assert address_of("::1", ["[2001:db8::1]:443"], "::1, 10.0.0.0/8") == "2001:db8::1"
    assert address_of("10.1.2.3", [], "10.0.0.0/8") == "10.1.2.3"


def test_trusting_every_peer_or_an_unreadable_proxy_is_refused() -> None:
    for spec in ("*", "10.0.0.0/8, *", "proxy.internal"):
        with pytest.raises(pydantic.ValidationError, match="FORWARDED_ALLOW_IPS"):
            Settings(forwarded_allow_ips=spec)
