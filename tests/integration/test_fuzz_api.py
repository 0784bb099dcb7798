"""Bad input at the edge: the gateway's OpenAPI description fuzzed with schemathesis. No 5xx, ever,
and every error in OpenAI's format. CI runs a bounded number of examples per operation
(FUZZ_EXAMPLES, 15); `make fuzz` runs many more."""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.integration.stack import Stack

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "15"))


def fuzz(stack: Stack, headers: dict[str, str], only_admin: bool) -> list[str]:
    """Every operation of the schema, EXAMPLES cases each (schema-conforming and not); returns their labels."""
    schema = schemathesis.openapi.from_url(f"{stack.base_url}/openapi.json")
    labels = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if only_admin != operation.path.startswith("/api/v1/admin"):
            continue
        labels.append(operation.label)

        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(case=operation.as_strategy())
        def call(case) -> None:  # type: ignore[no-untyped-def]
            response = case.call(base_url=stack.base_url, headers=headers, timeout=30)
            where = f"{case.method} {case.formatted_path}"
            assert response.status_code < 500, f"{where} -> {response.status_code}: {response.text}"
            if response.status_code >= 400:
                error = response.json()["error"]
                assert error["message"] and error["type"], f"{where}: {response.text}"
                assert "Traceback" not in response.text

        call()
    return labels


def test_no_server_error_for_a_tenant(stack: Stack) -> None:
    labels = fuzz(stack, stack.auth, only_admin=False)
    assert "POST /v1/chat/completions" in labels and "GET /api/v1/usage" in labels


def test_no_server_error_for_the_admin(stack: Stack) -> None:
    labels = fuzz(stack, {"Authorization": f"Bearer {stack.env['ADMIN_API_KEY']}"}, only_admin=True)
    assert "POST /api/v1/admin/keys" in labels and "GET /api/v1/admin/cache/entries" in labels
