"""The API contract: every operation of /openapi.json, fuzzed in-process (schemathesis).

No input may cause a server error, and every response must be one the schema documents.
"""

from __future__ import annotations

import os
import random

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
from starlette import testclient

from ..conftest import TOKEN

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="session")
def api_schema(client: TestClient) -> schemathesis.BaseSchema:
    """The running app's own schema (the session's app, on the real backends).

    Loaded from the app the suite already runs: loading it from a new app would start that
    app's backends (an embedded PostgreSQL in the working directory) just to read a document.
    """
    return schemathesis.openapi.from_dict(client.get("/openapi.json").json())


schema = schemathesis.pytest.from_fixture("api_schema")


@schemathesis.serializer("application/x-ndjson")
def _ndjson(ctx: schemathesis.SerializationContext, value: object) -> bytes:
    """``POST /import``'s body: the generated text as it is."""
    return str(value).encode()


AUTHORIZED = {"Authorization": f"Bearer {TOKEN}", "X-Soma-Namespace": "contract"}
# Every run draws new cases; the seed is in the report header (SOMA_FUZZ_SEED=<seed> replays it).
SEED = int(os.environ.get("SOMA_FUZZ_SEED") or random.SystemRandom().randrange(2**32))
EXAMPLES = int(os.environ.get("SOMA_FUZZ_EXAMPLES", "220"))  # per operation, sent twice


@schema.parametrize()
@pytest.mark.timeout(300)  # every operation, one after the other, within one test's time limit
@hypothesis.seed(SEED)
@hypothesis.settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
    database=None,
)
def test_no_server_error_and_no_undocumented_response(
    case: schemathesis.Case, client: TestClient
) -> None:
    """Each generated call goes once with the token and once without."""
    if case.operation.label == "GET /export" and isinstance(case.query, dict):
        # every namespace of the session's database would be exported each time: one export of
        # them is in tests/transfer/test_http.py
        case.query.pop("all_namespaces", None)
    for headers in (AUTHORIZED, {}):
        kwargs = case.as_transport_kwargs(base_url=str(client.base_url), headers=headers)
        kwargs.pop("verify", None)
        try:
            response = client.request(**kwargs)
        except testclient.httpx.InvalidURL:  # over the test client's own URL limit: never sent
            hypothesis.reject()
        case.validate_response(response, checks=CHECKS)
