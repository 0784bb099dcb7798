"""The tenants logic over a fake repository: keys stored by hash, shown once, errors as statuses."""

from __future__ import annotations

from typing import Any

import pytest

from services.tenants import registry as registry_module
from services.tenants import repository
from services.tenants.registry import Registry, TenantsError
from shared.contracts.tenants import (
    CreateKey,
    CreateTenant,
    KeyCreated,
    KeyInfo,
    KeyList,
    KeyResolution,
    KeyRevocation,
    KeySummary,
    ListKeys,
    ResolveKey,
    RevokeKey,
    TenantCreated,
    TenantInfo,
    api_key_hash,
)

KEY_ID = "0b6f4c0e-8f57-4a39-9d0f-6c1f4f2b9a11"


def summary(**fields: Any) -> KeySummary:
    values: dict[str, Any] = {"id": KEY_ID, "tenant": "acme", "name": "ci", "prefix": "lcp-abcdefg", "created_at": 1.0}
    return KeySummary(**{**values, **fields})


class FakeRepository:
    """Records what the registry asks of the repository; answers from a few fixed rows."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.tenants = {"acme"}
        self.keys: list[KeySummary] = []
        for name in ("insert_tenant", "insert_key", "select_keys", "tenant_exists", "revoke_key", "resolve_key"):
            monkeypatch.setattr(repository, name, getattr(self, name))

    async def insert_tenant(self, pool: object, name: str) -> TenantInfo | None:
        if name in self.tenants:
            return None
        self.tenants.add(name)
        return TenantInfo(name=name, created_at=2.0)

    async def insert_key(self, pool: object, **fields: Any) -> KeySummary | None:
        self.calls.append(("insert_key", fields))
        if fields["tenant"] not in self.tenants:
            return None
        return summary(prefix=fields["prefix"], allowed_models=fields["allowed_models"])

    async def select_keys(self, pool: object, tenant: str | None) -> list[KeySummary]:
        return [key for key in self.keys if tenant is None or key.tenant == tenant]

    async def tenant_exists(self, pool: object, name: str) -> bool:
        return name in self.tenants

    async def revoke_key(self, pool: object, key_id: str) -> tuple[KeySummary, str] | None:
        if key_id != KEY_ID:
            return None
        return summary(revoked_at=3.0), "f" * 64

    async def resolve_key(self, pool: object, key_hash: str) -> KeyInfo | None:
        self.calls.append(("resolve_key", {"key_hash": key_hash}))
        return KeyInfo(key_id=KEY_ID, tenant="acme") if key_hash == "a" * 64 else None


@pytest.fixture
def repo(monkeypatch: pytest.MonkeyPatch) -> FakeRepository:
    return FakeRepository(monkeypatch)


@pytest.fixture
def registry() -> Registry:
    return Registry(pool=None)  # type: ignore[arg-type]


async def test_a_new_key_is_stored_by_hash_and_returned_in_plain_once(repo: FakeRepository, registry: Registry) -> None:
    outcome = await registry.answer(CreateKey(tenant="acme", name="ci", rpm_limit=5, allowed_models=["m1", "m2", "m1"]))
    assert isinstance(outcome.reply, KeyCreated)
    assert outcome.notice is None
    key = outcome.reply.api_key
    stored = repo.calls[-1][1]
    assert stored["key_hash"] == api_key_hash(key)
    assert key not in {str(value) for value in stored.values()}
    assert key.startswith(stored["prefix"]) and len(stored["prefix"]) < 12
    assert stored["rpm_limit"] == 5 and stored["tokens_per_day"] is None
    assert stored["allowed_models"] == ["m1", "m2"]  # duplicates dropped, order kept
    assert "api_key" not in outcome.reply.key.model_dump()


async def test_a_key_for_an_unknown_tenant_is_a_404(repo: FakeRepository, registry: Registry) -> None:
    with pytest.raises(TenantsError) as raised:
        await registry.answer(CreateKey(tenant="nobody", name="ci"))
    assert (raised.value.status, raised.value.code) == (404, "tenant_not_found")
    assert raised.value.info().status == 404


async def test_creating_a_tenant_twice_is_a_409(repo: FakeRepository, registry: Registry) -> None:
    outcome = await registry.answer(CreateTenant(name="globex"))
    assert isinstance(outcome.reply, TenantCreated)
    assert outcome.reply.tenant.name == "globex"
    with pytest.raises(TenantsError) as raised:
        await registry.answer(CreateTenant(name="globex"))
    assert (raised.value.status, raised.value.code) == (409, "tenant_exists")


async def test_listing_the_keys_of_an_unknown_tenant_is_a_404(repo: FakeRepository, registry: Registry) -> None:
    assert isinstance((await registry.answer(ListKeys(tenant="acme"))).reply, KeyList)
    with pytest.raises(TenantsError) as raised:
        await registry.answer(ListKeys(tenant="nobody"))
    assert raised.value.code == "tenant_not_found"


async def test_a_revocation_comes_with_the_notice_for_every_gateway(repo: FakeRepository, registry: Registry) -> None:
    outcome = await registry.answer(RevokeKey(key_id=KEY_ID))
    assert isinstance(outcome.reply, KeyRevocation)
    assert outcome.reply.key.revoked_at == 3.0
    assert outcome.notice is not None
    assert (outcome.notice.key_id, outcome.notice.tenant, outcome.notice.key_hash) == (KEY_ID, "acme", "f" * 64)


async def test_revoking_an_unknown_key_is_a_404(repo: FakeRepository, registry: Registry) -> None:
    with pytest.raises(TenantsError) as raised:
        await registry.answer(RevokeKey(key_id="00000000-0000-0000-0000-000000000000"))
    assert raised.value.code == "key_not_found"


async def test_resolving_answers_the_key_or_none(repo: FakeRepository, registry: Registry) -> None:
    found = (await registry.answer(ResolveKey(key_hash="a" * 64))).reply
    missing = (await registry.answer(ResolveKey(key_hash="b" * 64))).reply
    assert isinstance(found, KeyResolution) and found.key is not None and found.key.tenant == "acme"
    assert isinstance(missing, KeyResolution) and missing.key is None


async def test_the_dev_key_is_ensured_by_hash(monkeypatch: pytest.MonkeyPatch, registry: Registry) -> None:
    seen: dict[str, Any] = {}

    async def ensure_key(pool: object, **fields: Any) -> tuple[KeySummary, bool]:
        seen.update(fields)
        return summary(tenant=fields["tenant"]), False

    monkeypatch.setattr(repository, "ensure_key", ensure_key)
    result = await registry.ensure_dev_key("lcp-my-local-dev-key-0000000000")
    assert result.tenant == registry_module.DEV_TENANT == seen["tenant"]
    assert seen["key_hash"] == api_key_hash("lcp-my-local-dev-key-0000000000")
    assert "lcp-my-local-dev-key-0000000000" not in seen.values()
