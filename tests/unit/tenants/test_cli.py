"""The operators' CLI without a broker: command lines become requests, replies become text."""

from __future__ import annotations

import pytest

from services.tenants import cli
from shared.contracts.tenants import (
    CreateKey,
    CreateTenant,
    KeyCreated,
    KeyList,
    KeyRevocation,
    KeySummary,
    ListKeys,
    ListTenants,
    RevokeKey,
    TenantInfo,
    TenantList,
)

KEY_ID = "0b6f4c0e-8f57-4a39-9d0f-6c1f4f2b9a11"


def request(*argv: str) -> object:
    return cli.build_request(cli.parser().parse_args(argv))


def test_each_verb_becomes_its_request() -> None:
    assert request("create-tenant", "acme") == CreateTenant(name="acme")
    assert request("list-tenants") == ListTenants()
    assert request("list-keys") == ListKeys()
    assert request("list-keys", "--tenant", "acme", "--json") == ListKeys(tenant="acme")
    assert request("revoke-key", KEY_ID) == RevokeKey(key_id=KEY_ID)
    assert request(
        "create-key",
        "--tenant",
        "acme",
        "--name",
        "ci",
        "--rpm",
        "60",
        "--tokens-per-day",
        "1000",
        "--model",
        "gpt-4o-mini",
        "--model",
        "gpt-4o",
    ) == CreateKey(
        tenant="acme", name="ci", rpm_limit=60, tokens_per_day=1000, allowed_models=["gpt-4o-mini", "gpt-4o"]
    )
    assert request("create-key", "--tenant", "acme", "--name", "ci") == CreateKey(tenant="acme", name="ci")


def test_bad_values_are_refused_before_anything_is_sent(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["create-tenant", "Not A Slug"]) == cli.EXIT_USAGE
    assert "invalid name" in capsys.readouterr().err
    assert cli.main(["create-key", "--tenant", "acme", "--name", "ci", "--rpm", "0"]) == cli.EXIT_USAGE
    assert cli.main(["revoke-key", "42"]) == cli.EXIT_USAGE
    with pytest.raises(SystemExit) as exited:
        cli.main(["create-key", "--tenant", "acme"])  # --name is required
    assert exited.value.code == cli.EXIT_USAGE


def test_a_created_key_is_printed_on_its_own_line() -> None:
    key = KeySummary(id=KEY_ID, tenant="acme", name="ci", prefix="lcp-abcdefg", created_at=0.0)
    text = cli.render(KeyCreated(key=key, api_key="lcp-" + "x" * 40))
    assert "API key: lcp-" + "x" * 40 in text.splitlines()
    assert KEY_ID in text


def test_listings_are_tables() -> None:
    keys = KeyList(
        items=[
            KeySummary(id=KEY_ID, tenant="acme", name="ci", prefix="lcp-abcdefg", created_at=0.0, rpm_limit=60),
            KeySummary(
                id=KEY_ID,
                tenant="acme",
                name="old",
                prefix="lcp-zzz",
                created_at=0.0,
                revoked_at=86_400.0,
                allowed_models=["m1", "m2"],
            ),
        ]
    )
    lines = cli.render(keys).splitlines()
    assert lines[0].split()[:4] == ["ID", "PREFIX", "TENANT", "NAME"]
    assert "1970-01-02 00:00:00Z" in lines[2] and "m1,m2" in lines[2]
    assert "any" in lines[1] and "60" in lines[1]
    assert cli.render(KeyList(items=[])) == "No keys."
    tenants = cli.render(TenantList(items=[TenantInfo(name="acme", created_at=0.0)]))
    assert tenants.splitlines()[1].startswith("acme")
    revoked = KeySummary(id=KEY_ID, tenant="acme", name="ci", prefix="lcp-a", created_at=0.0, revoked_at=0.0)
    assert cli.render(KeyRevocation(key=revoked)).startswith(f"Revoked key {KEY_ID}")


def test_an_unreachable_broker_is_reported_not_raised(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:1/")
    assert cli.main(["list-tenants"]) == cli.EXIT_UNAVAILABLE
    assert "RabbitMQ is not reachable" in capsys.readouterr().err
