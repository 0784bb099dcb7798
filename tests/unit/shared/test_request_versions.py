"""Rolling deploys: a Messages request is one that workers from before `protocol` cannot read, so they refuse it
rather than read its body as OpenAI's (an OpenAI cache key, an OpenAI call); one that lost its protocol on
the way is refused by the new workers."""

from __future__ import annotations

import time

import orjson
import pydantic
import pytest

from shared.contracts.base import Contract
from shared.contracts.completions import WORK_REQUEST_ADAPTER, ApiProtocol, CompletionRequest, LookupContext
from shared.worker import _first_line

MESSAGES_BODY = {"model": "claude-haiku-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": "Hi"}]}


def request(protocol: ApiProtocol = "openai") -> CompletionRequest:
    now = time.time()
    return CompletionRequest(
        request_id="r1", tenant="t", received_at=now, deadline=now + 10, body=MESSAGES_BODY, protocol=protocol
    )


def test_a_messages_request_is_one_a_worker_reading_only_version_1_refuses() -> None:
    wire = request(protocol="anthropic").model_dump_json()
    assert orjson.loads(wire)["v"] == 2
    with pytest.raises(pydantic.ValidationError):
        Contract.model_validate_json(wire)  # what every contract of an older worker checks first
    read = WORK_REQUEST_ADAPTER.validate_json(wire)
    assert isinstance(read, CompletionRequest) and read.protocol == "anthropic"
    forwarded = read.model_copy(update={"lookup": LookupContext(exact_key="k")}).model_dump_json()
    assert (orjson.loads(forwarded)["v"], orjson.loads(forwarded)["protocol"]) == (2, "anthropic")


def test_openai_requests_stay_version_1_and_those_of_older_gateways_are_read() -> None:
    wire = orjson.loads(request().model_dump_json())
    assert (wire["v"], wire["protocol"]) == (1, "openai")
    del wire["protocol"]  # an older gateway's
    read = WORK_REQUEST_ADAPTER.validate_python(wire)
    assert isinstance(read, CompletionRequest) and read.protocol == "openai"


def test_a_messages_request_that_lost_its_protocol_is_refused_with_a_clear_reason() -> None:
    wire = orjson.loads(request(protocol="anthropic").model_dump_json())
    del wire["protocol"]  # dropped by an older cache worker that forwarded it anyway
    with pytest.raises(pydantic.ValidationError) as refused:
        WORK_REQUEST_ADAPTER.validate_python(wire)
    reason = _first_line(refused.value)  # what the worker logs and puts on the dead letter
    assert "protocol" in reason and "workers before gateways" in reason
