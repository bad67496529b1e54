"""Milvus going away at run time: writes and deletes stay durable in PostgreSQL, search says
503 naming Milvus, and once Milvus is back the reconciler brings it level with PostgreSQL:
vectors written during the outage arrive and vectors of memories deleted during it are gone
(read from Milvus itself, not only through the API)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient
from pymilvus import MilvusClient
from pymilvus.exceptions import MilvusException

from somamemory.app import create_app
from somamemory.embeddings.base import EmbedderInfo
from somamemory.embeddings.bundled import BUNDLED_MODEL
from somamemory.schema import upgrade_to_head
from somamemory.settings import Settings
from somamemory.stores.collection_identity import physical_name

from ..conftest import TOKEN, create_database, drop_database, free_port
from ..milvus_server import MilvusLiteServer

NAMESPACE = "outage"
AUTH = {"Authorization": f"Bearer {TOKEN}", "X-Soma-Namespace": NAMESPACE}
BASE = Settings.model_fields["milvus_collection"].default
# the default embedder's collection (stores/collection_identity.py names it)
COLLECTION = physical_name(BASE, EmbedderInfo(kind="onnx", model=BUNDLED_MODEL, dim=384))


def served_collection(client: MilvusClient) -> str:
    """The one collection the service made (its name depends on the embedder it runs)."""
    names = [name for name in client.list_collections() if name.startswith(f"{BASE}__")]
    assert len(names) == 1, names
    return names[0]


def milvus_versions(uri: str, namespace: str) -> dict[str, int] | None:
    """What Milvus itself holds for a namespace: coord -> version of its vector (None while
    the server does not answer yet). A restarted server has the collection released: load it,
    as any reader must."""
    try:
        client = MilvusClient(uri=uri, timeout=5)
        try:
            collection = served_collection(client)
            client.load_collection(collection)
            rows = client.query(
                collection,
                filter=f'namespace == "{namespace}"',
                output_fields=["coord", "version"],
                consistency_level="Strong",
            )
        finally:
            client.close()
    except MilvusException:
        return None
    return {row["coord"]: int(row["version"]) for row in rows}


def restart(server: MilvusLiteServer) -> None:
    """Start the stopped server again and open the collection at once.

    The milvus-lite server opens a collection lazily on its first use after a start, without a
    lock: two first requests at once each open it, and the writes of the one that loses are
    dropped. Opening it here first keeps that artefact of the stand-in out of the test.
    """
    server.start()

    def opened() -> bool:
        try:
            client = MilvusClient(uri=server.uri, timeout=5)
            try:
                client.describe_collection(COLLECTION)
            finally:
                client.close()
        except MilvusException:
            return False  # the client's channel is still reconnecting
        return True

    wait_until(opened, "the restarted Milvus answers")


def wait_until(
    condition: Callable[[], bool], what: str, seconds: float = 30, shown: Callable[[], object] = str
) -> None:
    """Wait for a condition, failing with ``what`` (and ``shown()``) after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}: {shown()}"
        time.sleep(0.2)


def test_milvus_down_at_run_time_is_503_for_search_and_writes_and_deletes_reach_it_later(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    server = MilvusLiteServer(tmp_path / "milvus", free_port()).start()
    database = create_database()  # its own: another app's reconciler must not settle its outbox
    upgrade_to_head(database)
    settings = make_settings(
        milvus_uri=server.uri,
        postgres_url=database,
        connect_timeout_seconds=2.0,
        reconcile_interval_seconds=0.5,
    )

    def store(client: TestClient, coord: str, text: str) -> dict:
        body = {"coord": coord, "payload": {"text": text}}
        response = client.post("/memories", json=body, headers=AUTH)
        assert response.status_code == 200, response.text  # durable in PostgreSQL
        return response.json()

    try:
        with TestClient(create_app(settings)) as client:
            assert store(client, "1", "before")["indexed"] is True
            assert store(client, "30", "deleted while milvus is away")["indexed"] is True
            assert store(client, "31", "changed, then deleted while away")["indexed"] is True
            assert milvus_versions(server.uri, NAMESPACE) == {"1.0": 1, "30.0": 1, "31.0": 1}

            server.stop()
            assert store(client, "2", "during")["indexed"] is False
            for i in range(3, 23):  # writing goes on while Milvus is away
                assert store(client, str(i), f"outage note {i}")["indexed"] is False
            assert store(client, "31", "changed while away")["version"] == 2
            assert store(client, "32", "written and deleted while away")["indexed"] is False
            for coord in ("30", "31", "32"):  # the delete stands; the vector's removal is owed
                deleted = client.delete(f"/memories/{coord}", headers=AUTH).json()
                assert deleted["deleted"] is True
                assert deleted["receipt"] == {
                    "canonical": "done",
                    "cache": "done",
                    "vector": "pending",
                }
                assert client.get(f"/memories/{coord}", headers=AUTH).status_code == 404
            assert client.get("/memories/2", headers=AUTH).json()["memory"]["payload"] == {
                "text": "during"
            }
            search = client.post("/memories/search", json={"query": "before"}, headers=AUTH)
            assert search.status_code == 503
            assert search.json()["detail"].startswith("milvus is unavailable: search failed")
            assert search.headers["Retry-After"] == "2"
            assert client.get("/readyz").status_code == 503
            health = client.get("/health", headers=AUTH).json()
            assert health["vector_store"] is False
            assert health["reconcile_backlog"] == 24  # 21 writes and 3 deletes owed to Milvus

            restart(server)
            # the client reconnects on its own, with backoff; the reconciler (backing off too)
            # then writes what is owed and removes what was deleted, and Milvus itself says so
            wait_until(
                lambda: client.get("/health", headers=AUTH).json()["reconcile_backlog"] == 0,
                "the outbox is settled",
                seconds=60,
            )
            live = {"1.0": 1, "2.0": 1, **{f"{i}.0": 1 for i in range(3, 23)}}
            assert milvus_versions(server.uri, NAMESPACE) == live
            for coord in ("30", "31", "32"):
                status = client.get(f"/memories/{coord}/deletion", headers=AUTH).json()
                assert status["clear"] is True and status["vector"] is True

            hits = client.post("/memories/search", json={"query": "before"}, headers=AUTH)
            assert hits.status_code == 200, hits.text
            assert hits.json()["memories"][0]["coord"] == "1.0"
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
            deleted_texts = ["deleted while milvus is away", "changed while away"]
            for text in deleted_texts:  # a deleted memory is never answered
                hits = client.post(
                    "/memories/search", json={"query": text, "top_k": 30}, headers=AUTH
                ).json()["memories"]
                assert {"30.0", "31.0", "32.0"}.isdisjoint(hit["coord"] for hit in hits)
            stats = client.get("/stats", headers=AUTH).json()
            assert stats["vector_count"] == stats["total_memories"] == 22
    finally:
        server.stop()
        drop_database(database)
