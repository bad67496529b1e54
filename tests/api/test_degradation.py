"""Graceful degradation, decided at startup, on real servers and closed ports: each mode serves
the whole round trip (search included), and a missing Milvus stops startup with a message."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from somamemory.app import create_app
from somamemory.errors import StartupError
from somamemory.settings import Settings

from ..conftest import TOKEN, free_port

AUTH = {"Authorization": f"Bearer {TOKEN}", "X-Soma-Namespace": "degraded"}


def _round_trip(client: TestClient) -> None:
    """Store, update, read, list versions, search and delete one memory."""
    first = {"text": "green tea at noon", "v": 1}
    stored = client.post("/memories", json={"coord": "1,2", "payload": first}, headers=AUTH)
    assert stored.status_code == 200, stored.text
    second = {"text": "green tea at noon", "v": 2}
    again = client.post("/memories", json={"coord": "1,2", "payload": second}, headers=AUTH)
    assert again.json()["version"] == 2
    assert client.get("/memories/1,2", headers=AUTH).json()["memory"]["payload"] == second
    versions = client.get("/memories/1,2/versions", headers=AUTH).json()["versions"]
    assert [v["payload"]["v"] for v in versions] == [1, 2]
    search = client.post("/memories/search", json={"query": "tea"}, headers=AUTH)
    assert search.status_code == 200, search.text  # search works in this mode, on live data
    assert [(h["coord"], h["version"], h["payload"]) for h in search.json()["memories"]] == [
        ("1.0,2.0", 2, second)
    ]
    assert client.delete("/memories/1,2", headers=AUTH).json()["deleted"] is True
    assert client.get("/memories/1,2", headers=AUTH).status_code == 404
    gone = client.post("/memories/search", json={"query": "tea"}, headers=AUTH)
    assert gone.status_code == 200 and gone.json()["memories"] == []


def _graph_refused(client: TestClient) -> None:
    """The graph lives in PostgreSQL: without it, each graph call answers 503 saying so."""
    assert client.get("/health", headers=AUTH).json()["graph_store"] is False
    calls = [
        client.post("/graph/link", json={"from_coord": "1", "to_coord": "2"}, headers=AUTH),
        client.get("/graph/neighbors", params={"coord": "1"}, headers=AUTH),
        client.get("/graph/path", params={"from_coord": "1", "to_coord": "2"}, headers=AUTH),
        client.post("/memories/search", json={"query": "tea", "expand": {}}, headers=AUTH),
    ]
    for response in calls:
        assert response.status_code == 503, response.text
        assert "memory graph lives in PostgreSQL" in response.json()["detail"]


def _history_refused(client: TestClient) -> None:
    """Time travel, export and import run on PostgreSQL: without it, 503 saying so."""
    client.post("/memories", json={"coord": "3", "payload": {"v": 1}}, headers=AUTH)
    as_of = client.get("/memories/3", params={"as_of": "2999-01-01T00:00:00Z"}, headers=AUTH)
    assert as_of.status_code == 503 and "history kept in PostgreSQL" in as_of.json()["detail"]
    exported = client.get("/export", headers=AUTH)
    assert exported.status_code == 503 and "export runs on PostgreSQL" in exported.text
    head = '{"format": "somamemory.export", "version": 1}\n'
    imported = client.post("/import", content=head, headers=AUTH)
    assert imported.status_code == 503 and "import runs on PostgreSQL" in imported.text


def _metric_line(client: TestClient, prefix: str) -> str:
    return next(
        line for line in client.get("/metrics").text.splitlines() if line.startswith(prefix)
    )


def test_redis_down_runs_on_the_in_process_cache(
    make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(redis_port=free_port())
    with TestClient(create_app(settings)) as client:
        health = client.get("/health", headers=AUTH).json()
        assert health["mode"] == "cache-in-process"
        assert health["degraded"] is True
        assert health["kv_store"] is True
        assert health["backends"]["redis"] == {"ok": False, "kind": "down", "detail": None}
        _round_trip(client)
        assert _metric_line(client, 'somamemory_degraded_mode{mode="cache-in-process"}').endswith(
            " 1.0"
        )
    assert "Redis" in caplog.text and "in-process cache" in caplog.text


def test_postgres_down_runs_redis_only(
    make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(postgres_url=f"postgresql://postgres@127.0.0.1:{free_port()}/none")
    with TestClient(create_app(settings)) as client:
        health = client.get("/health", headers=AUTH).json()
        assert health["mode"] == "redis-only"
        assert health["backends"]["postgres"]["kind"] == "down"
        assert health["kv_store"] is True  # Redis carries the memories
        _round_trip(client)
        _graph_refused(client)
        _history_refused(client)
        assert client.get("/readyz").status_code == 200
    assert "Redis-only mode" in caplog.text


def test_postgres_and_redis_down_run_in_process(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(
        postgres_url=f"postgresql://postgres@127.0.0.1:{free_port()}/none",
        redis_port=free_port(),
    )
    with TestClient(create_app(settings)) as client:
        assert client.get("/health", headers=AUTH).json()["mode"] == "in-process"
        _round_trip(client)
        _graph_refused(client)
        _history_refused(client)


def test_milvus_down_refuses_to_start_with_a_clear_message(
    make_settings: Callable[..., Settings],
) -> None:
    port = free_port()
    settings = make_settings(milvus_uri=f"http://127.0.0.1:{port}", connect_timeout_seconds=1.0)
    with pytest.raises(StartupError) as raised, TestClient(create_app(settings)):
        pass
    assert f"Milvus at http://127.0.0.1:{port} is unreachable" in str(raised.value)
    assert "SOMA_MILVUS_URI" in str(raised.value)  # (a hang would fail on the test timeout)


def test_a_schema_behind_head_is_refused_naming_the_command(
    make_settings: Callable[..., Settings],
) -> None:
    from ..conftest import create_database, drop_database

    url = create_database()  # empty: never migrated
    try:
        with (
            pytest.raises(StartupError, match="somamemory migrate"),
            TestClient(create_app(make_settings(postgres_url=url))),
        ):
            pass
    finally:
        drop_database(url)


def test_no_token_refuses_to_start_unless_explicitly_unauthenticated_on_loopback(
    make_settings: Callable[..., Settings],
) -> None:
    with pytest.raises(StartupError, match="SOMA_API_TOKEN"):
        create_app(make_settings(api_token=None))
    with pytest.raises(StartupError, match="SOMA_API_TOKEN"):
        create_app(make_settings(api_token=None, allow_unauthenticated=True, host="0.0.0.0"))
    app = create_app(make_settings(api_token=None, allow_unauthenticated=True))
    with TestClient(app, base_url="http://localhost:10101") as client:
        assert client.get("/stats", headers={"X-Soma-Namespace": "open"}).status_code == 200
        for host in ("127.0.0.1:10101", "[::1]:10101", "LOCALHOST"):
            assert client.get("/healthz", headers={"Host": host}).status_code == 200
        # DNS rebinding: another site's name resolving to 127.0.0.1 gets nothing
        for host in ("evil.example", "evil.example:10101", "localhost.evil.example", ""):
            refused = client.get("/stats", headers={"Host": host})
            assert refused.status_code == 421, host
            assert "localhost" in refused.json()["detail"]
