"""Milvus going away at run time: writes stay durable, search says 503, nothing is lost."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient

from somamemory.app import create_app
from somamemory.schema import upgrade_to_head
from somamemory.settings import Settings

from ..conftest import TOKEN, create_database, drop_database, free_port
from ..milvus_server import MilvusLiteServer

AUTH = {"Authorization": f"Bearer {TOKEN}", "X-Soma-Namespace": "outage"}


def test_milvus_down_at_run_time_is_503_for_search_and_writes_stay_durable(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    server = MilvusLiteServer(tmp_path / "milvus", free_port()).start()
    database = create_database()  # its own: another app's reconciler must not settle its outbox
    upgrade_to_head(database)
    settings = make_settings(
        milvus_uri=server.uri, postgres_url=database, connect_timeout_seconds=2.0
    )
    try:
        with TestClient(create_app(settings)) as client:
            first = client.post(
                "/memories", json={"coord": "1", "payload": {"text": "before"}}, headers=AUTH
            )
            assert first.json()["indexed"] is True

            server.stop()
            during = client.post(
                "/memories", json={"coord": "2", "payload": {"text": "during"}}, headers=AUTH
            )
            assert during.status_code == 200  # durable in PostgreSQL
            assert during.json()["indexed"] is False
            for i in range(3, 23):  # writing goes on while Milvus is away
                more = client.post(
                    "/memories",
                    json={"coord": str(i), "payload": {"text": f"outage note {i}"}},
                    headers=AUTH,
                )
                assert more.status_code == 200 and more.json()["indexed"] is False
            assert client.get("/memories/2", headers=AUTH).json()["memory"]["payload"] == {
                "text": "during"
            }
            search = client.post("/memories/search", json={"query": "before"}, headers=AUTH)
            assert search.status_code == 503
            assert "milvus" in search.json()["detail"]
            assert client.get("/readyz").status_code == 503
            health = client.get("/health", headers=AUTH).json()
            assert health["vector_store"] is False
            assert health["reconcile_backlog"] >= 21  # the outage writes are owed to Milvus

            server.start()
            deadline = time.monotonic() + 30
            while True:  # the client reconnects on its own, with backoff
                hits = client.post("/memories/search", json={"query": "before"}, headers=AUTH)
                if hits.status_code == 200 or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert hits.status_code == 200, hits.text
            assert hits.json()["memories"][0]["coord"] == "1.0"

            # the reconciler drains the backlog: the write made during the outage is found
            deadline = time.monotonic() + 30
            while client.get("/health", headers=AUTH).json()["reconcile_backlog"] != 0:
                assert time.monotonic() < deadline, "backlog did not drain"
                time.sleep(0.2)
            found = client.post(
                "/memories/search", json={"query": "during", "top_k": 1}, headers=AUTH
            ).json()["memories"]
            assert found[0]["coord"] == "2.0"
            for i in range(3, 23):  # every memory written during the outage is searchable
                hits = client.post(
                    "/memories/search",
                    json={"query": f"outage note {i}", "top_k": 1},
                    headers=AUTH,
                ).json()["memories"]
                assert hits[0]["coord"] == f"{i}.0"
            stats = client.get("/stats", headers=AUTH).json()
            assert stats["vector_count"] == stats["total_memories"] == 22
    finally:
        server.stop()
        drop_database(database)
