"""Bad input answers a 4xx a person can act on, never a 500, and changes nothing."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

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

        def chunked(data: bytes) -> Iterator[bytes]:  # no Content-Length: counted as it comes
            for start in range(0, len(data), 1000):
                yield data[start : start + 1000]

        raw = json.dumps(body).encode()
        for path, content in [
            ("/memories", raw),
            ("/memories", chunked(raw)),
            ("/memories/batch", chunked(json.dumps({"items": [body]}).encode())),
            ("/import", chunked(b"x" * 20_000)),
        ]:
            refused = small.post(path, content=content, headers=auth)
            assert refused.status_code == 413, (path, refused.text)
            assert refused.headers["content-type"] == "application/json"
            problem = refused.json()
            assert problem["status"] == 413 and "SOMA_MAX_REQUEST_BYTES" in problem["detail"]
        assert small.get("/memories/1", headers=auth).status_code == 404


@pytest.mark.parametrize(
    ("path", "raw"),
    [
        ("/memories", '{"coord": "1", "payload": {}, "importance": NaN}'),
        ("/memories", '{"coord": "1", "payload": {}, "importance": Infinity}'),
        ("/memories", '{"coord": "1", "payload": {}, "vector": [NaN]}'),
        ("/memories/search", '{"query": "x", "top_k": NaN}'),
        ("/memories/search", '{"query": "x", "top_k": -Infinity}'),
        ("/memories/batch", '{"items": [], "atomic": NaN}'),
        ("/memories", '{"coord": "1", "payload": {}, "memory_type": "\\ud800"}'),
    ],
)
def test_non_finite_numbers_and_lone_surrogates_in_the_schema_are_422_not_500(
    client: TestClient, headers: dict[str, str], path: str, raw: str
) -> None:
    response = client.post(
        path, content=raw, headers={**headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "invalid_request" and body["errors"][0]["loc"][0] == "body"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ('{"coord": "1", "payload": {"text": "\\ud800"}}', "surrogate"),
        ('{"coord": "1", "payload": {}, "vector": ' + str([1e39] * DIM) + "}", "float32"),
    ],
)
def test_values_the_stores_cannot_hold_are_400(
    client: TestClient, headers: dict[str, str], raw: str, reason: str
) -> None:
    response = client.post(
        "/memories", content=raw, headers={**headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert reason in response.json()["detail"]


def test_a_vector_near_the_float32_limit_still_scores(
    client: TestClient, headers: dict[str, str]
) -> None:
    huge = [3.0e38] * DIM
    stored = client.post(
        "/memories", json={"coord": "8", "payload": {"text": "x"}, "vector": huge}, headers=headers
    )
    assert stored.status_code == 200, stored.text
    hits = client.post(
        "/memories/search", json={"vector": huge, "top_k": 1}, headers=headers
    ).json()["memories"]
    assert hits[0]["coord"] == "8.0" and hits[0]["score"] == pytest.approx(1.0, abs=1e-3)


# Arabic-Indic, fullwidth and superscript digits
@pytest.mark.parametrize("coord", ["\u0661,\u0662", "\uff11", "1,\u00b2"])
def test_coordinates_are_ascii_decimal_numbers(
    client: TestClient, headers: dict[str, str], coord: str
) -> None:
    response = client.post("/memories", json={"coord": coord, "payload": {}}, headers=headers)
    assert response.status_code == 400
    assert "decimal number" in response.json()["detail"]


def test_the_payload_limit_counts_utf8_bytes(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(max_payload_bytes=1000, force_hash_embeddings=True)  # not meaning
    with TestClient(create_app(settings)) as small:
        auth = {"Authorization": f"Bearer {TOKEN}", "X-Soma-Namespace": "utf8"}
        fits = {"coord": "1", "payload": {"text": "é" * 450}}  # 900 bytes, 2,700 escaped
        assert small.post("/memories", json=fits, headers=auth).status_code == 200
        over = {"coord": "2", "payload": {"text": "é" * 520}}
        assert small.post("/memories", json=over, headers=auth).status_code == 413
