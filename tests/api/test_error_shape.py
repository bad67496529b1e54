"""Every error answer has one shape, whichever layer refuses: route, gate, schema or limits."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from somamemory.app import create_app
from somamemory.settings import Settings

BAD_ATOMIC_BATCH = {"items": [{}], "atomic": True}
SHAPE = {"status", "title", "code", "detail"}


def _assert_problem(status: int, body: dict, code: str) -> None:
    assert set(body) >= SHAPE, body
    assert body["status"] == status and body["code"] == code, body
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]


@pytest.mark.parametrize(
    ("method", "path", "extra", "status", "code"),
    [
        ("post", "/memories", {"json": {"coord": "1,x", "payload": {}}}, 400, "invalid_coordinate"),
        ("post", "/memories", {"json": {"coord": "1"}}, 422, "invalid_request"),
        ("get", "/memories/12345", {}, 404, "memory_not_found"),
        ("get", "/no/such/route", {}, 404, "not_found"),
        ("put", "/memories/1", {}, 405, "method_not_allowed"),
        (
            "post",
            "/memories/batch",
            {"json": {"items": [{}], "atomic": True}},
            400,
            "invalid_batch",
        ),
        ("post", "/memories", {"headers": {"Authorization": "Bearer wrong"}}, 401, "unauthorized"),
    ],
)
def test_every_refusal_has_the_one_error_shape(
    client: TestClient,
    headers: dict[str, str],
    method: str,
    path: str,
    extra: dict,
    status: int,
    code: str,
) -> None:
    sent = {**headers, **extra.pop("headers", {})}
    response = getattr(client, method)(path, headers=sent, **extra)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    _assert_problem(status, response.json(), code)


def test_a_schema_error_lists_each_field_without_echoing_the_input(
    client: TestClient, headers: dict[str, str]
) -> None:
    huge = "x" * 100_000
    body = {"coord": "1", "payload": {}, "importance": huge, "memory_type": "nope"}
    response = client.post("/memories", json=body, headers=headers)
    problem = response.json()
    _assert_problem(422, problem, "invalid_request")
    assert {tuple(error["loc"]) for error in problem["errors"]} == {
        ("body", "importance"),
        ("body", "memory_type"),
    }
    assert huge not in response.text
    assert "importance" in problem["detail"] and "memory_type" in problem["detail"]


def test_a_refusal_by_host_has_the_same_shape(make_settings: Callable[..., Settings]) -> None:
    app = create_app(make_settings(api_token=None, allow_unauthenticated=True))
    with TestClient(app, base_url="http://localhost") as client:
        refused = client.get("/stats", headers={"Host": "evil.example"})
    _assert_problem(421, refused.json(), "misdirected_request")
