"""Errors at the HTTP edge, in the format of the API the client speaks: OpenAI's
{"error": {"message", "type", "param", "code"}}, or on the Messages endpoint Anthropic's
{"type": "error", "error": {"type", "message"}}."""

from __future__ import annotations

import logging

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    502: "upstream_error",
    503: "service_unavailable",
    504: "timeout_error",
}


class ApiError(Exception):
    """An error to send to the client as it is."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type or TYPE_BY_STATUS.get(status, "api_error")
        self.code = code
        self.param = param
        self.headers = headers or {}

    def response(self, extra_headers: dict[str, str] | None = None, protocol: str = "openai") -> Response:
        headers = {**self.headers, **(extra_headers or {})}
        if protocol == "anthropic":
            return anthropic_error_response(self.status, self.message, self.type, headers)
        return error_response(self.status, self.message, self.type, self.code, self.param, headers)


def error_response(
    status: int,
    message: str,
    type: str | None = None,
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """An OpenAI-style error response."""
    body = {
        "error": {
            "message": message,
            "type": type or TYPE_BY_STATUS.get(status, "api_error"),
            "param": param,
            "code": code,
        }
    }
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


# Anthropic's error types (https://docs.anthropic.com/en/api/errors), by status.
ANTHROPIC_TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",
    529: "overloaded_error",
}
ANTHROPIC_TYPES = frozenset(ANTHROPIC_TYPE_BY_STATUS.values())
# Errors of the proxy's own making keep their type in either format: they name what to fix here.
PROXY_TYPES = frozenset({"upstream_auth_error", "upstream_timeout", "upstream_unreachable", "upstream_error"})
MESSAGES_PATHS = frozenset({"/v1/messages", "/api/v1/messages"})


def anthropic_error_response(
    status: int, message: str, type: str | None = None, headers: dict[str, str] | None = None
) -> Response:
    """An Anthropic-style error response."""
    body = {"type": "error", "error": {"type": anthropic_error_type(status, type), "message": message}}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


def anthropic_error_type(status: int, type: str | None) -> str:
    """The error's type if Anthropic's (or the proxy's own), else Anthropic's type for the status."""
    if status == 413:
        return "request_too_large"  # OpenAI says invalid_request_error; Anthropic has a type of its own
    if type in ANTHROPIC_TYPES or type in PROXY_TYPES:
        return type
    return ANTHROPIC_TYPE_BY_STATUS.get(status, "api_error")


def protocol_of(request: Request) -> str:
    """The API format of the endpoint a request was sent to: its errors are in that format. Paths under the
    Messages endpoint too: the proxy has no /v1/messages/count_tokens or batches, and the anthropic SDK
    reads that 404 only in its own format."""
    path = request.url.path
    if path in MESSAGES_PATHS or any(path.startswith(f"{messages}/") for messages in MESSAGES_PATHS):
        return "anthropic"
    return "openai"


def install(app: FastAPI) -> None:
    """Make every error the app can produce come out in OpenAI's format, without stack traces."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        return exc.response(protocol=protocol_of(request))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        headers = getattr(exc, "headers", None)
        if protocol_of(request) == "anthropic":
            return anthropic_error_response(exc.status_code, str(exc.detail), headers=headers)
        return error_response(exc.status_code, str(exc.detail), headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        param = ".".join(str(p) for p in first.get("loc", ())[1:]) or None
        content_type = request.headers.get("content-type", "")
        if first.get("loc") == ("body",) and "json" not in content_type:
            # curl -d sends a form content type; FastAPI then never reads the body as JSON.
            message = (
                "Invalid request: send the body as JSON, with Content-Type: application/json"
                f" (got {content_type or 'no Content-Type'})."
            )
            return ApiError(400, message).response(protocol=protocol_of(request))
        message = f"Invalid request: {first.get('msg', 'invalid input')}"
        return ApiError(400, message, param=param).response(protocol=protocol_of(request))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        # One line: Starlette re-raises the exception after this answer, and uvicorn logs its traceback.
        log.error("unhandled error on %s %s: %r", request.method, request.url.path, exc)
        message = "The server had an error while processing your request."
        return ApiError(500, message, type="api_error").response(protocol=protocol_of(request))
