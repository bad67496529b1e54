"""Bad input answers a 4xx a person can act on, never a 500, and changes nothing."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from somamemory.app import create_app
from somamemory.settings import Settings

from ..conftest import DIM, TOKEN


@pytest.mark.parametrize(
    ("coord", "reason"),
    [
        ("", "empty"),
        ("1,,2", "empty"),
        ("1,abc", "not a decimal number"),
        ("nan", "not a decimal number"),
        ("1,inf", "not a decimal number"),
        ("1e999", "not finite"),
        (",".join(["1"] * 65), "at most 64"),
    ],
)
def test_bad_coordinates_are_refused_with_the_reason(
    client: TestClient, headers: dict[str, str], coord: str, reason: str
) -> None:
    response = client.post("/memories", json={"coord": coord, "payload": {}}, headers=headers)
    assert response.status_code == 400
    assert reason in response.json()["detail"]
    if coord:
        assert client.get(f"/memories/{coord}", headers=headers).status_code == 400
        assert client.delete(f"/memories/{coord}", headers=headers).status_code == 400
    assert client.get("/stats", headers=headers).json()["total_memories"] == 0


@pytest.mark.parametrize(
    "body",
    [
        {"coord": "1", "payload": [1, 2]},
        {"coord": "1", "payload": "text"},
        {"coord": "1"},
        {"coord": "1", "payload": {}, "memory_type": "procedural"},
        {"coord": "1", "payload": {}, "importance": "high"},
        {"coord": 1, "payload": {}},
    ],
)
def test_malformed_bodies_get_422(client: TestClient, headers: dict[str, str], body: dict) -> None:
    response = client.post("/memories", json=body, headers=headers)
    assert response.status_code == 422
    assert response.json()["detail"]
    assert client.get("/stats", headers=headers).json()["total_memories"] == 0


def test_payload_over_the_limit_is_413(
    client: TestClient, headers: dict[str, str], settings: Settings
) -> None:
    big = {"text": "x" * settings.max_payload_bytes}
    response = client.post("/memories", json={"coord": "1", "payload": big}, headers=headers)
    assert response.status_code == 413
    assert "SOMA_MAX_PAYLOAD_BYTES" in response.json()["detail"]
    assert client.get("/memories/1", headers=headers).status_code == 404


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ('{"coord": "1", "payload": {"x": NaN}}', "NaN"),
        ('{"coord": "1", "payload": {"x": "a\\u0000b"}}', "NUL"),
        ('{"coord": "1", "payload": {}, "vector": [1, 2]}', "dimensions"),
        ('{"coord": "1", "payload": {}, "vector": ' + str([0.0] * DIM) + "}", "zeros"),
    ],
)
def test_values_postgres_or_milvus_would_choke_on_are_400(
    client: TestClient, headers: dict[str, str], raw: str, reason: str
) -> None:
    response = client.post(
        "/memories", content=raw, headers={**headers, "Content-Type": "application/json"}
    )
    assert response.status_code in (400, 422)
    assert reason in response.text
    assert client.get("/memories/1", headers=headers).status_code == 404


@pytest.mark.parametrize("bad", ["", "a b", "x" * 65, "ns/other", "ünï".encode()])
def test_bad_namespace_header_is_400(
    client: TestClient, headers: dict[str, str], bad: str | bytes
) -> None:
    response = client.get("/stats", headers={**headers, "X-Soma-Namespace": bad})
    assert response.status_code == 400
    assert "X-Soma-Namespace" in response.json()["detail"]


@pytest.mark.parametrize(
    "auth", [None, "Bearer wrong-token", "Basic dGVzdC10b2tlbg==", "Bearer", "test-token"]
)
def test_missing_or_wrong_token_is_401_with_www_authenticate(
    client: TestClient, headers: dict[str, str], auth: str | None
) -> None:
    sent = {k: v for k, v in headers.items() if k != "Authorization"}
    if auth is not None:
        sent["Authorization"] = auth
    for method, path in [
        ("post", "/memories"),
        ("get", "/memories/1"),
        ("get", "/stats"),
        ("delete", "/memories/1"),
        ("get", "/health"),
    ]:
        kwargs = {"json": {"coord": "1", "payload": {}}} if method == "post" else {}
        response = client.request(method, path, headers=sent, **kwargs)
        assert response.status_code == 401, (method, path)
        assert response.headers["WWW-Authenticate"] == "Bearer"
    assert client.get("/stats", headers=headers).json()["total_memories"] == 0


def test_probes_and_metrics_need_no_token(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ok"}
    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    assert "somamemory_http_requests_total" in metrics.text
    assert "somamemory_backend_up" in metrics.text or "somamemory_degraded_mode" in metrics.text


def test_a_request_body_over_the_limit_is_refused_before_it_is_read(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(max_request_bytes=10_000)
    with TestClient(create_app(settings)) as small:
        body = {"coord": "1", "payload": {"text": "x" * 20_000}}
        auth = {"Authorization": f"Bearer {TOKEN}", "X-Soma-Namespace": "limits"}
        response = small.post("/memories", json=body, headers=auth)
        assert response.status_code == 413
        assert small.get("/memories/1", headers=auth).status_code == 404
