"""The tenants service's handler with fake broker objects: errors as data, revocations announced first."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import orjson
import psycopg
import pydantic
import pytest
from prometheus_client import REGISTRY

from services.tenants.handlers import TenantsHandlers
from services.tenants.registry import Outcome, TenantsError
from shared.contracts.tenants import KeyResolution, KeyRevocation, KeyRevoked, KeySummary, TenantsRequest
from tests.unit.fakes import ReplyChannel

KEY_ID = "0b6f4c0e-8f57-4a39-9d0f-6c1f4f2b9a11"


class Events:
    """One log of what went out, in order: broadcasts and replies."""

    def __init__(self) -> None:
        self.log: list[tuple[str, Any]] = []


class FakeExchange:
    def __init__(self, events: Events, name: str, fail: bool = False) -> None:
        self.events, self.name, self.fail = events, name, fail

    async def publish(self, message: Any, routing_key: str) -> None:
        if self.fail:
            raise ConnectionError("broker gone")
        self.events.log.append((self.name, (orjson.loads(message.body), routing_key)))


class FakeRegistry:
    def __init__(self, outcome: Outcome | Exception) -> None:
        self.outcome = outcome
        self.requests: list[TenantsRequest] = []

    async def answer(self, request: TenantsRequest) -> Outcome:
        self.requests.append(request)
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


def handlers(outcome: Outcome | Exception, events: Events, fail_broadcast: bool = False) -> TenantsHandlers:
    channel = ReplyChannel(FakeExchange(events, "reply"))
    return TenantsHandlers(
        FakeRegistry(outcome),  # type: ignore[arg-type]
        channel,  # type: ignore[arg-type]
        FakeExchange(events, "broadcast", fail_broadcast),  # type: ignore[arg-type]
    )


def message(body: dict[str, Any]) -> Any:
    return SimpleNamespace(body=orjson.dumps(body), reply_to="caller.inbox", correlation_id="c-1")


RESOLVE = {"type": "resolve_key", "key_hash": "a" * 64}
REVOKE = {"type": "revoke_key", "key_id": KEY_ID}


async def test_an_answer_is_replied_to_the_caller() -> None:
    events = Events()
    await handlers(Outcome(KeyResolution(key=None)), events).on_request(message(RESOLVE))
    [(where, (body, routing_key))] = events.log
    assert (where, routing_key) == ("reply", "caller.inbox")
    assert body["type"] == "key_resolution" and body["key"] is None


async def test_a_refused_request_is_an_error_reply_with_its_status() -> None:
    events = Events()
    await handlers(TenantsError(404, "key_not_found", "no such key"), events).on_request(message(REVOKE))
    [(_, (body, _))] = events.log
    assert body["type"] == "error"
    assert (body["error"]["status"], body["error"]["code"]) == (404, "key_not_found")


async def test_a_database_failure_is_a_503_reply() -> None:
    events = Events()
    await handlers(psycopg.OperationalError("down"), events).on_request(message(RESOLVE))
    [(_, (body, _))] = events.log
    assert (body["error"]["status"], body["error"]["code"]) == (503, "tenants_unavailable")


async def test_a_revocation_is_broadcast_before_the_reply() -> None:
    events = Events()
    key = KeySummary(id=KEY_ID, tenant="acme", name="ci", prefix="lcp-abc", created_at=1.0, revoked_at=2.0)
    notice = KeyRevoked(key_id=KEY_ID, tenant="acme", key_hash="f" * 64, revoked_at=2.0)
    await handlers(Outcome(KeyRevocation(key=key), notice), events).on_request(message(REVOKE))
    assert [where for where, _ in events.log] == ["broadcast", "reply"]
    broadcast, routing_key = events.log[0][1]
    assert routing_key == ""
    assert KeyRevoked.model_validate(broadcast) == notice


async def test_a_failed_broadcast_still_answers_the_revocation() -> None:
    events = Events()
    key = KeySummary(id=KEY_ID, tenant="acme", name="ci", prefix="lcp-abc", created_at=1.0, revoked_at=2.0)
    notice = KeyRevoked(key_id=KEY_ID, tenant="acme", key_hash="f" * 64, revoked_at=2.0)
    await handlers(Outcome(KeyRevocation(key=key), notice), events, fail_broadcast=True).on_request(message(REVOKE))
    [(where, (body, _))] = events.log
    assert where == "reply" and body["type"] == "key_revocation"


@pytest.mark.parametrize(
    "body",
    [
        {"type": "resolve_key", "key_hash": "not-a-hash"},
        {"type": "revoke_key", "key_id": "1; DROP TABLE api_keys"},
        {"type": "create_tenant", "name": "Not A Slug"},
        {"type": "create_key", "tenant": "acme", "name": "ci", "rpm_limit": 0},
        {"type": "shutdown"},
        {"type": "list_tenants", "v": 2},
    ],
)
async def test_an_unreadable_request_raises_for_the_worker_to_dead_letter(body: dict[str, Any]) -> None:
    events = Events()
    with pytest.raises(pydantic.ValidationError):
        await handlers(Outcome(KeyResolution()), events).on_request(message(body))
    assert events.log == []


def requests_counted(request_type: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value("llmcache_tenants_requests_total", {"type": request_type, "outcome": outcome})
    assert value is not None, "every type and outcome starts at 0"
    return value


@pytest.mark.parametrize(
    ("answer", "counted_as"),
    [
        (Outcome(KeyResolution(key=None)), "ok"),
        (TenantsError(404, "key_not_found", "no such key"), "refused"),
        (psycopg.OperationalError("down"), "unavailable"),
    ],
)
async def test_each_answer_is_counted_by_type_and_outcome(answer: Outcome | Exception, counted_as: str) -> None:
    before = {outcome: requests_counted("resolve_key", outcome) for outcome in ("ok", "refused", "unavailable")}
    await handlers(answer, Events()).on_request(message(RESOLVE))
    after = {outcome: requests_counted("resolve_key", outcome) for outcome in before}
    assert {outcome: after[outcome] - before[outcome] for outcome in before} == {
        outcome: 1.0 if outcome == counted_as else 0.0 for outcome in before
    }


async def test_a_failed_broadcast_is_counted() -> None:
    before = REGISTRY.get_sample_value("llmcache_tenants_revocation_notice_failures_total") or 0.0
    key = KeySummary(id=KEY_ID, tenant="acme", name="ci", prefix="lcp-abc", created_at=1.0, revoked_at=2.0)
    notice = KeyRevoked(key_id=KEY_ID, tenant="acme", key_hash="f" * 64, revoked_at=2.0)
    await handlers(Outcome(KeyRevocation(key=key), notice), Events(), fail_broadcast=True).on_request(message(REVOKE))
    assert REGISTRY.get_sample_value("llmcache_tenants_revocation_notice_failures_total") == before + 1
