"""POST /v1/chat/completions through the real app with a fake broker (the state's RPC client puts the cache
service's scripted replies on the request's reply queue): what request is published for whom, what the client
gets back (body, status, OpenAI's error JSON, X-Cache and rate-limit headers, SSE), what is refused before any
quota is used or anything is published, and that every answer is counted once."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from pydantic import BaseModel

from services.gateway.auth import Principal
from services.gateway.errors import ApiError
from services.gateway.limits import Admission, InFlightLimit
from services.gateway.main import create_app
from services.gateway.settings import Settings
from shared.contracts.base import CacheInfo, ErrorInfo, ErrorReply
from shared.contracts.completions import CompletionReply, CompletionRequest
from shared.topology import Topology

TOPOLOGY = Topology("unit-chat")
PRINCIPAL = Principal(tenant="acme", key_id="key-9", rpm_limit=60)
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "What is the capital of France?"}]}
COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1_700_000_000,
    "model": "gpt-4o-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris."}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 14, "completion_tokens": 3, "total_tokens": 17},
}
HIT = CompletionReply(
    cache=CacheInfo(status="HIT", match="semantic", similarity=0.93124, key="key-1", age_seconds=90),
    completion=COMPLETION,
)


class Keys:
    def __init__(self, principal: Principal) -> None:
        self.principal = principal

    async def authenticate(self, token: str | None, address: str | None = None) -> Principal:
        return self.principal


@dataclass
class Limiter:
    admitted: list[Principal] = field(default_factory=list)
    tokens: list[tuple[Principal, int]] = field(default_factory=list)

    async def admit(self, principal: Principal) -> Admission:
        self.admitted.append(principal)
        return Admission(60, 59)

    async def record_tokens(self, principal: Principal, tokens: int) -> None:
        self.tokens.append((principal, tokens))


@dataclass
class Inbox:
    queues: dict[str, asyncio.Queue[bytes]] = field(default_factory=dict)
    closed: list[str] = field(default_factory=list)

    def open(self, request_id: str) -> asyncio.Queue[bytes]:
        self.queues[request_id] = asyncio.Queue()
        return self.queues[request_id]

    def close(self, request_id: str) -> None:
        self.closed.append(request_id)


@dataclass
class Rpc:
    """Publishes nowhere: records the request and answers it with `replies` (or fails the publish)."""

    inbox: Inbox
    replies: list[BaseModel] = field(default_factory=list)
    fail: bool = False
    sent: list[tuple[str, CompletionRequest, float]] = field(default_factory=list)

    async def send(self, routing_key: str, body: bytes, correlation_id: str, timeout: float) -> None:
        if self.fail:
            raise ConnectionError("broker gone")
        request = CompletionRequest.model_validate_json(body)
        assert request.request_id == correlation_id
        self.sent.append((routing_key, request, timeout))
        for reply in self.replies:
            self.inbox.queues[correlation_id].put_nowait(reply.model_dump_json().encode())


@dataclass
class Gateway:
    http: TestClient
    rpc: Rpc
    limiter: Limiter
    inbox: Inbox


def gateway(*replies: BaseModel, principal: Principal = PRINCIPAL, **settings: Any) -> Gateway:
    config = Settings(**settings)
    app = create_app(config)  # no lifespan: the state below stands in for the broker clients
    inbox, limiter = Inbox(), Limiter()
    rpc = Rpc(inbox, list(replies))

    app.state.gateway = SimpleNamespace(
        settings=config,
        auth=Keys(principal),
        in_flight=InFlightLimit(8),
        limiter=limiter,
        inbox=inbox,
        rpc=rpc,
        topology=TOPOLOGY,
    )
    return Gateway(TestClient(app, raise_server_exceptions=False), rpc, limiter, inbox)


def post(gw: Gateway, body: Any = None, path: str = "/v1/chat/completions", **headers: str) -> Any:
    content = orjson.dumps(BODY if body is None else body) if not isinstance(body, bytes) else body
    headers = {"Authorization": "Bearer lcp-key", "Content-Type": "application/json", **headers}
    return gw.http.post(path, content=content, headers=headers)


def answered(status: str, cache: str, stream: str = "false") -> float:
    labels = {"status": status, "cache": cache, "stream": stream}
    return REGISTRY.get_sample_value("llmcache_gateway_requests_total", labels) or 0.0


def test_a_request_is_published_for_the_callers_key_with_its_body_and_cache_controls() -> None:
    gw = gateway(HIT, request_timeout_seconds=30)
    headers = {"Cache-Control": "no-store", "X-Cache-Namespace": "team-a", "X-Cache-TTL": "60"}
    response = post(gw, **headers)

    assert response.status_code == 200, response.text
    [(routing_key, request, timeout)] = gw.rpc.sent
    assert routing_key == TOPOLOGY.cache_lookup and timeout == 30
    assert (request.tenant, request.key_id, request.body, request.stream) == ("acme", "key-9", BODY, False)
    assert (request.controls.store, request.controls.namespace, request.controls.ttl_seconds) == (False, "team-a", 60)
    assert request.deadline - request.received_at == pytest.approx(30)  # nobody waits longer for its answer
    assert response.headers["X-Request-Id"] == request.request_id  # how a user finds its usage row and trace
    assert gw.inbox.closed == [request.request_id]


def test_a_hit_is_answered_as_openai_would_with_its_cache_and_rate_limit_headers() -> None:
    gw = gateway(HIT)
    response = post(gw)
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    assert response.json() == COMPLETION
    assert response.headers["X-Cache"] == "HIT" and response.headers["X-Cache-Match"] == "semantic"
    assert response.headers["X-Cache-Similarity"] == "0.9312" and response.headers["X-Cache-Key"] == "key-1"
    assert response.headers["Age"] == "90"
    assert response.headers["x-ratelimit-limit-requests"] == "60"
    assert response.headers["x-ratelimit-remaining-requests"] == "59"
    assert gw.limiter.tokens == []  # a hit costs the key no tokens


def test_a_miss_counts_its_tokens_against_the_key() -> None:
    miss = CompletionReply(cache=CacheInfo(status="MISS", key="key-1"), completion=COMPLETION)
    gw = gateway(miss)
    response = post(gw)
    assert response.status_code == 200 and response.headers["X-Cache"] == "MISS" and "Age" not in response.headers
    assert gw.limiter.tokens == [(PRINCIPAL, 17)]


def test_a_stored_answer_asked_for_as_a_stream_is_replayed_as_server_sent_events() -> None:
    gw = gateway(HIT)
    response = post(gw, {**BODY, "stream": True})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    assert gw.rpc.sent[0][1].stream is True
    events = [line.removeprefix("data: ") for line in response.text.split("\n\n") if line]
    assert events[-1] == "[DONE]"
    chunks = [orjson.loads(event) for event in events[:-1]]
    assert all(chunk["object"] == "chat.completion.chunk" for chunk in chunks)
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"]) == "Paris."


def test_the_old_path_is_the_same_endpoint() -> None:
    gw = gateway(HIT)
    response = post(gw, path="/api/v1/chat/completions")
    assert response.status_code == 200 and response.json() == COMPLETION and len(gw.rpc.sent) == 1


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (
            {"model": "gpt-4o-mini", "messages": []},
            400,
            {"type": "invalid_request_error", "param": "messages", "code": "invalid_value"},
        ),
        (
            {"model": "gpt-4o-mini", "messages": [{"role": "robot", "content": "hi"}]},
            400,
            {"type": "invalid_request_error", "param": "messages.0.role", "code": "invalid_value"},
        ),
        (
            {"model": "gpt-4o-mini", "messages": [{"role": "assistant", "content": "Hi"}, {"role": "user"}]},
            400,
            {"type": "invalid_request_error", "param": "messages.1", "code": "invalid_value"},
        ),
        (b'{"model": "gpt-4o-mini",', 400, {"type": "invalid_request_error", "param": None, "code": "invalid_json"}),
        (
            {**BODY, "model": "gpt-4o"},  # the key may use gpt-4o-mini only
            403,
            {"type": "permission_error", "param": "model", "code": "model_not_allowed"},
        ),
    ],
)
def test_a_request_the_caller_must_fix_is_refused_before_any_quota_is_used_and_counted_once(
    body: Any, status: int, error: dict[str, Any]
) -> None:
    gw = gateway(HIT, principal=Principal(tenant="acme", key_id="key-9", allowed_models=["gpt-4o-mini"]))
    before = answered("4xx", "ERROR")
    response = post(gw, body)
    assert response.status_code == status, response.text
    refused = response.json()["error"]
    assert {name: refused[name] for name in error} == error and refused["message"]
    assert gw.limiter.admitted == [] and gw.rpc.sent == []
    assert answered("4xx", "ERROR") == before + 1


def test_a_refusal_carries_its_request_id_which_its_log_line_names(caplog: pytest.LogCaptureFixture) -> None:
    """Refused in the route (400, with the caller's tenant known) or by the gate before it (401): either way
    the client gets an X-Request-Id that finds the gateway's line about it."""

    class NoKey:
        async def authenticate(self, token: str | None, address: str | None = None) -> Principal:
            raise ApiError(401, "Invalid API key.", code="invalid_api_key")

    with caplog.at_level(logging.INFO, logger="services.gateway.requests"):
        refused = post(gateway(HIT), {"model": "gpt-4o-mini", "messages": []})
        gw = gateway(HIT)
        gw.http.app.state.gateway.auth = NoKey()  # type: ignore[attr-defined]
        unknown = post(gw)
    assert (refused.status_code, unknown.status_code) == (400, 401)
    lines = [record.getMessage() for record in caplog.records]
    for response, line_has in ((refused, "tenant=acme status=400"), (unknown, "status=401")):
        request_id = response.headers["X-Request-Id"]
        assert len(request_id) == 32
        [line] = [line for line in lines if f"id={request_id}" in line]
        assert line_has in line and "request ERROR" in line


def test_a_bad_cache_header_is_a_400_naming_it_before_any_quota_is_used() -> None:
    gw = gateway(HIT)
    response = post(gw, **{"X-Cache-TTL": "forever"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == ("invalid_request_error", "invalid_header", "X-Cache-TTL")
    assert gw.limiter.admitted == [] and gw.rpc.sent == []


def test_the_cache_service_unreachable_is_a_503_to_retry_shortly() -> None:
    gw = gateway()
    gw.rpc.fail = True
    before = answered("5xx", "ERROR")
    response = post(gw)
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"
    assert response.json()["error"]["type"] == "service_unavailable"
    assert response.headers["X-Request-Id"] == gw.inbox.closed[0]  # its reply queue is not left open
    assert answered("5xx", "ERROR") == before + 1


@pytest.mark.parametrize(
    ("error", "headers"),
    [
        (
            ErrorInfo(
                type="rate_limit_error",
                code="upstream_rate_limited",
                message="Slow down.",
                status=429,
                retry_after_seconds=2.5,
            ),
            {"Retry-After": "3"},
        ),
        (
            ErrorInfo(type="upstream_auth_error", message="The upstream refused the proxy's key.", status=502),
            {"x-should-retry": "false"},  # a refused key stays refused: the SDKs must not retry
        ),
    ],
)
def test_an_error_reply_is_the_answer_with_its_status_and_what_to_retry(
    error: ErrorInfo, headers: dict[str, str]
) -> None:
    gw = gateway(ErrorReply(error=error, cache=CacheInfo(status="MISS", key="key-1")))
    response = post(gw)
    assert response.status_code == error.status
    assert response.json() == {
        "error": {"message": error.message, "type": error.type, "param": None, "code": error.code}
    }
    assert {name: response.headers.get(name) for name in headers} == headers
    assert response.headers["X-Cache"] == "MISS"


def test_no_reply_in_time_is_a_504() -> None:
    gw = gateway(request_timeout_seconds=0.05)  # published; no reply ever comes
    response = post(gw)
    assert response.status_code == 504
    assert (response.json()["error"]["type"], response.json()["error"]["code"]) == ("timeout_error", "timeout")
    assert len(gw.rpc.sent) == 1 and gw.inbox.closed == [gw.rpc.sent[0][1].request_id]


def test_every_api_answer_carries_one_request_id() -> None:
    gw = gateway(HIT)
    hit = post(gw)
    assert hit.status_code == 200
    assert len(hit.headers.get_list("X-Request-Id")) == 1  # the proxied answer's own, not a second one
    assert gw.rpc.sent[0][1].request_id == hit.headers["X-Request-Id"]  # the id the request travelled with
    me = gw.http.get("/api/v1/me", headers={"Authorization": "Bearer lcp-key"})
    assert me.status_code == 200 and len(me.headers["X-Request-Id"]) == 32
    assert "X-Request-Id" not in gw.http.get("/healthz").headers  # outside the API: no request to name
