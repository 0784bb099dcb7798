"""The caller's own cache and wrong-hit feedback at the edge: whose tenant a request acts on, the
`make eval` rows a reported pair exports as, and the one log line of a request."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from services.gateway.auth import ADMIN, Principal
from services.gateway.errors import ApiError
from services.gateway.request_log import RequestLine
from services.gateway.routes.cache import eval_pair, own_tenant
from shared.contracts.base import CacheInfo
from shared.contracts.cache_admin import ReportedPair


def test_a_tenant_key_acts_on_its_own_tenant_and_the_admin_names_one() -> None:
    alice = Principal(tenant="alice", key_id="k")
    assert own_tenant(alice, None) == "alice" == own_tenant(alice, "alice")
    with pytest.raises(ApiError) as refused:
        own_tenant(alice, "bob")
    assert refused.value.status == 403
    assert own_tenant(ADMIN, "bob") == "bob"
    with pytest.raises(ApiError) as missing:
        own_tenant(ADMIN, None)
    assert (missing.value.status, missing.value.param) == (400, "tenant")


def pair(**fields: object) -> ReportedPair:
    values: dict[str, object] = {
        "pair_hash": "ab" * 32,
        "tenant": "acme",
        "entry_key": "k",
        "stored_prompt": "Convert 5 miles to km",
        "asked_prompt": "Convert 50 miles to km",
        "reported_at": 0.0,
    }
    return ReportedPair.model_validate({**values, **fields})


def test_a_reported_pair_exports_as_a_make_eval_row() -> None:
    assert eval_pair(pair()) == {
        "id": "ab" * 8,
        "a": "Convert 5 miles to km",
        "b": "Convert 50 miles to km",
        "same_answer": False,
        "category": "reported_wrong_hit",
    }


def test_a_conversation_exports_as_message_lists() -> None:
    row = eval_pair(
        pair(stored_context="user: Plan a trip\nassistant: Where to?\nSomewhere warm", asked_context="user: Hi")
    )
    assert row["a"] == [
        {"role": "user", "content": "Plan a trip"},
        {"role": "assistant", "content": "Where to?\nSomewhere warm"},
        {"role": "user", "content": "Convert 5 miles to km"},
    ]
    assert row["b"] == [{"role": "user", "content": "Hi"}, {"role": "user", "content": "Convert 50 miles to km"}]


def test_the_request_line_says_what_happened_and_nothing_it_should_not(caplog: pytest.LogCaptureFixture) -> None:
    state = SimpleNamespace(settings=SimpleNamespace(log_requests=True))
    line = RequestLine(state, "r1", "acme", "gpt-4o\nmini fake=1")  # type: ignore[arg-type]
    cache = CacheInfo(status="HIT", match="semantic", similarity=0.93214, key="k")
    with caplog.at_level(logging.INFO):
        line.answered(cache).log(200, "HIT", stream=False, elapsed=0.0123)
    (record,) = caplog.records
    assert record.getMessage() == (
        "request HIT match=semantic similarity=0.9321 model=gpt-4o?mini?fake?1 tenant=acme status=200"
        " latency_ms=12.3 id=r1"
    )
    quiet = RequestLine(SimpleNamespace(settings=SimpleNamespace(log_requests=False)))  # type: ignore[arg-type]
    caplog.clear()
    with caplog.at_level(logging.INFO):
        quiet.log(200, "MISS", stream=False, elapsed=0.1)
    assert caplog.records == []
