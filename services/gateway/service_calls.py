"""One RPC from a route to another service, its failures as the HTTP errors a client reads.

Every route that asks a service (cache admin, tenants and keys, stats, models) goes through here, so
they fail alike: a service that does not answer in time, or a request the broker did not take (its
connection down or reconnecting), is a 503 with Retry-After; an error the service replies keeps its
status, type and code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import pydantic
from pydantic import BaseModel

from services.gateway.errors import ApiError
from services.gateway.state import GatewayState
from shared.rpc import RemoteError, RpcTimeout

ResultT = TypeVar("ResultT", bound=BaseModel)
RequestT = TypeVar("RequestT", bound=BaseModel)


def build_request(contract: type[RequestT], **fields: Any) -> RequestT:
    """A service request from caller input, or 400 naming the field that is wrong."""
    try:
        return contract(**fields)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(part) for part in first["loc"]) or None
        raise ApiError(400, f"Invalid value for '{param}': {first['msg']}", param=param, code="invalid_value") from exc


async def call_service(
    state: GatewayState,
    queue: str,
    message: BaseModel,
    result_type: type[ResultT],
    service: str,
    *,
    timeout: float | None = None,
    param_of: Callable[[str | None], str | None] = lambda code: None,
) -> ResultT:
    """The service's answer; `service` names it in the errors ("the tenants service"), `param_of` maps
    an error code to the request parameter it is about."""
    try:
        return await state.rpc.call(
            queue, message, result_type, timeout if timeout is not None else state.settings.control_timeout_seconds * 5
        )
    except RpcTimeout as exc:
        raise ApiError(503, f"The {service} did not answer.", headers={"Retry-After": "1"}) from exc
    except RemoteError as exc:
        error = exc.error
        raise ApiError(
            error.status, error.message, type=error.type, code=error.code, param=param_of(error.code)
        ) from exc
    except Exception as exc:  # publishing failed: the broker connection is down or reconnecting
        raise ApiError(503, f"The {service} is unreachable.", headers={"Retry-After": "1"}) from exc
