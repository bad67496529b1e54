"""The API contract: every operation of /openapi.json, fuzzed in-process (schemathesis).

No input may cause a server error, and every response must be one the schema documents.
"""

from __future__ import annotations

import hypothesis
import pytest
import schemathesis
from fastapi.testclient import TestClient
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from somamemory.app import create_app
from somamemory.settings import Settings

from ..conftest import TOKEN

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

# The schema is the app's own; requests go through the session's running app (real backends).
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(Settings(api_token="x")))


@pytest.fixture(params=["authorized", "anonymous"])
def auth_headers(request: pytest.FixtureRequest) -> dict[str, str]:
    if request.param == "authorized":
        return {"Authorization": f"Bearer {TOKEN}", "X-Soma-Namespace": "contract"}
    return {}


@schema.parametrize()
@hypothesis.settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
    derandomize=True,
)
def test_no_server_error_and_no_undocumented_response(
    case: schemathesis.Case, client: TestClient, auth_headers: dict[str, str]
) -> None:
    kwargs = case.as_transport_kwargs(base_url=str(client.base_url), headers=auth_headers)
    kwargs.pop("verify", None)
    response = client.request(**kwargs)
    case.validate_response(response, checks=CHECKS)
