"""Health and model-list queries (`<service>.control`, RPC), sent by the gateway to each service."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter

from shared.contracts.base import Contract


class HealthQuery(Contract):
    """Ask a service whether it and its dependencies are up."""

    type: Literal["health_query"] = "health_query"


class HealthReport(Contract):
    """One service's answer to a HealthQuery."""

    type: Literal["health"] = "health"
    service: str
    ok: bool
    checks: dict[str, bool] = Field(default_factory=dict)


class ModelsQuery(Contract):
    """Ask the LLM worker which models the upstream serves."""

    type: Literal["models_query"] = "models_query"


class ModelsResult(Contract):
    """The upstream's model list, in OpenAI's format (`data` items)."""

    type: Literal["models"] = "models"
    data: list[dict[str, Any]]


ControlRequest = Annotated[HealthQuery | ModelsQuery, Field(discriminator="type")]


CONTROL_ADAPTER: TypeAdapter[ControlRequest] = TypeAdapter(ControlRequest)
