"""Every route that asks another service fails alike: silence or an unreachable broker is a 503 with
Retry-After, an error reply keeps its status, type and code."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from services.gateway.errors import ApiError
from services.gateway.service_calls import call_service
from shared.contracts.base import ErrorInfo
from shared.contracts.control import HealthQuery, HealthReport
from shared.rpc import RemoteError, RpcTimeout


def state_whose_call(outcome: BaseException | HealthReport) -> Any:
    async def call(queue: str, message: Any, result_type: Any, timeout: float) -> HealthReport:
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    return SimpleNamespace(rpc=SimpleNamespace(call=call), settings=SimpleNamespace(control_timeout_seconds=1.0))


async def test_the_answer_comes_back() -> None:
    report = HealthReport(service="tenants", ok=True, checks={})
    assert await call_service(state_whose_call(report), "q", HealthQuery(), HealthReport, "tenants service") == report


@pytest.mark.parametrize(
    ("failure", "message"),
    [
        (RpcTimeout(), "The stats service did not answer."),
        (ConnectionError("closed"), "The stats service is unreachable."),
    ],
)
async def test_silence_or_a_refused_publish_is_a_503_to_retry(failure: BaseException, message: str) -> None:
    with pytest.raises(ApiError) as raised:
        await call_service(state_whose_call(failure), "q", HealthQuery(), HealthReport, "stats service")
    assert (raised.value.status, raised.value.message) == (503, message)
    assert raised.value.headers["Retry-After"] == "1"


async def test_an_error_reply_keeps_its_status_type_code_and_the_param_it_is_about() -> None:
    error = ErrorInfo(type="invalid_request_error", code="invalid_cursor", message="Bad cursor.", status=400)
    with pytest.raises(ApiError) as raised:
        await call_service(
            state_whose_call(RemoteError(error)),
            "q",
            HealthQuery(),
            HealthReport,
            "stats service",
            param_of=lambda code: "cursor" if code == "invalid_cursor" else None,
        )
    got = raised.value
    assert (got.status, got.type, got.code, got.param, got.message) == (
        400,
        "invalid_request_error",
        "invalid_cursor",
        "cursor",
        "Bad cursor.",
    )
