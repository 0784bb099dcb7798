"""The gateway's Anthropic format: keys sent as x-api-key, errors in Anthropic's envelope and types."""

from __future__ import annotations

import orjson
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.requests import Request

from services.gateway import errors
from services.gateway.anthropic_sse import error_event, event
from services.gateway.auth import bearer_token
from services.gateway.errors import ApiError, anthropic_error_response, protocol_of


def request(path: str = "/v1/messages", headers: dict[str, str] | None = None) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    return Request({"type": "http", "method": "POST", "path": path, "headers": raw, "query_string": b""})


def test_the_key_comes_as_a_bearer_token_or_as_x_api_key() -> None:
    assert bearer_token(request(headers={"x-api-key": "lcp-abc"})) == "lcp-abc"
    assert bearer_token(request(headers={"Authorization": "Bearer lcp-tok", "x-api-key": "lcp-abc"})) == "lcp-tok"
    assert bearer_token(request(headers={"x-api-key": "  "})) is None
    assert bearer_token(request()) is None


def test_errors_on_the_messages_endpoint_are_anthropics() -> None:
    assert protocol_of(request("/v1/messages")) == "anthropic"
    assert protocol_of(request("/v1/chat/completions")) == "openai"
    body = orjson.loads(ApiError(401, "Missing API key.").response(protocol="anthropic").body)
    assert body == {"type": "error", "error": {"type": "authentication_error", "message": "Missing API key."}}
    for status, kind in (
        (400, "invalid_request_error"),
        (404, "not_found_error"),
        (429, "rate_limit_error"),
        (529, "overloaded_error"),
    ):
        assert orjson.loads(anthropic_error_response(status, "x", "server_error").body)["error"]["type"] == kind
    refused = anthropic_error_response(502, "refused", "upstream_auth_error")
    assert (refused.status_code, orjson.loads(refused.body)["error"]["type"]) == (502, "upstream_auth_error")
    openai_style = orjson.loads(ApiError(400, "Bad.", param="model").response().body)
    assert openai_style["error"] == {"message": "Bad.", "type": "invalid_request_error", "param": "model", "code": None}


def test_events_are_named_after_their_type() -> None:
    assert event({"type": "message_stop"}) == b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
    assert error_event("overloaded_error", "Busy").startswith(b"event: error\ndata: ")


def test_a_request_too_large_on_the_messages_endpoint_is_anthropics_request_too_large() -> None:
    too_large = ApiError(413, "Request body is larger than 10 bytes.", code="request_too_large")
    response = too_large.response(protocol="anthropic")
    assert response.status_code == 413
    assert orjson.loads(response.body)["error"]["type"] == "request_too_large"
    assert orjson.loads(too_large.response().body)["error"]["code"] == "request_too_large"  # OpenAI's unchanged


def test_paths_under_the_messages_endpoint_answer_in_anthropics_format() -> None:
    app = FastAPI()
    errors.install(app)
    with TestClient(app) as http:
        missing = http.post("/v1/messages/count_tokens", json={"model": "claude-haiku-4-5", "messages": []})
        elsewhere = http.post("/v1/nothing-here", json={})
    assert missing.status_code == 404
    assert missing.json() == {"type": "error", "error": {"type": "not_found_error", "message": "Not Found"}}
    assert elsewhere.json()["error"]["type"] == "not_found_error" and "type" not in elsewhere.json()  # OpenAI's
