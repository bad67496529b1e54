"""While the new collection is built, search answers from the previous one; where this process
cannot embed a query for it, vector search is a 503 saying why and hybrid answers by keyword.
A previous collection that vanishes (another replica switched and dropped it) makes this
replica switch too.

An outbox entry held back for an hour keeps the rebuild from completing, so each of these
states lasts as long as the test looks at it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg
import pytest
from fastapi.testclient import TestClient

from somamemory.app import create_app
from somamemory.embeddings.base import EmbedderInfo
from somamemory.settings import Settings
from somamemory.stores.milvus_collections import MilvusCatalogue

from ..conftest import TOKEN, migrated_database
from .test_reembedding import _wait

HOLD_BACK = """
INSERT INTO pending_vectors (namespace, coord, version, attempts, enqueued_at, retry_at)
VALUES ('held-back', 'x', 0, 1, now() - interval '2 hours', now() + interval '1 hour')
"""


@pytest.fixture
def database() -> Iterator[str]:
    with migrated_database() as url:
        yield url


async def _execute(url: str, statement: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def _owed(url: str) -> int:
    """Outbox entries still owed: the reconciler clears one only once its vector is durable."""
    connection = await asyncpg.connect(url)
    try:
        owed: int = await connection.fetchval("SELECT count(*) FROM pending_vectors")
        return owed
    finally:
        await connection.close()


async def _record(uri: str, name: str, info: EmbedderInfo) -> None:
    catalogue = MilvusCatalogue(uri, token=None, timeout=5)
    try:
        await catalogue.record(name, info)
    finally:
        await catalogue.close()


def test_search_answers_from_the_previous_collection_or_says_why_not_until_it_vanishes(
    make_settings: Callable[..., Settings], tmp_path: Path, database: str
) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}", "X-Soma-Namespace": f"p-{uuid.uuid4().hex[:8]}"}
    common = {"data_dir": tmp_path, "postgres_url": database, "reconcile_interval_seconds": 0.5}
    before = make_settings(force_hash_embeddings=True, embedding_dim=32, **common)
    with TestClient(create_app(before)) as client:
        for i, word in enumerate(["walnut", "compass", "ember"], start=1):
            body = {"coord": str(i), "payload": {"text": f"the {word} note"}}
            assert client.post("/memories", json=body, headers=auth).status_code == 200
        old = client.app.state.backends.plan.target  # type: ignore[attr-defined]
    # an embedder this process cannot build filled it, as far as the record says
    gone_model = EmbedderInfo("sentence-transformers", str(tmp_path / "no-such-model"), 32)
    asyncio.run(_record(str(tmp_path / "milvus.db"), old, gone_model))
    asyncio.run(_execute(database, HOLD_BACK))

    after = make_settings(force_hash_embeddings=True, embedding_dim=64, **common)
    with TestClient(create_app(after)) as client:

        def state() -> dict:
            return client.get("/health", headers=auth).json()["reembedding"]

        def under_way() -> bool:  # its progress is counted a moment after the state is set
            shown = state()
            return shown["state"] == "building" and shown["remaining"] >= 1

        _wait(under_way, "the rebuild is under way")
        shown = state()
        assert shown["from"] == {
            "kind": "sentence-transformers",
            "model": gone_model.model,
            "dim": 32,
        }
        assert shown["to"] == {"kind": "hash", "model": None, "dim": 64}
        assert shown["remaining"] >= 1

        refused = client.post(
            "/memories/search", json={"query": "compass", "mode": "vector"}, headers=auth
        )
        assert refused.status_code == 503 and refused.json()["code"] == "reembedding"
        reason = refused.json()["detail"]
        assert "sentence-transformers" in reason and "hash (64 dims)" in reason
        assert "memories re-embedded" in reason and "mode 'keyword'" in reason

        hybrid = client.post("/memories/search", json={"query": "compass"}, headers=auth)
        assert hybrid.status_code == 200 and hybrid.json()["mode"] == "keyword"
        assert [hit["coord"] for hit in hybrid.json()["memories"]] == ["2.0"]

        old_dim = client.post("/memories/search", json={"vector": [0.1] * 32}, headers=auth)
        assert old_dim.status_code == 200 and len(old_dim.json()["memories"]) == 3
        new_dim = client.post("/memories/search", json={"vector": [0.1] * 64}, headers=auth)
        assert new_dim.status_code == 503 and "needs 32 values" in new_dim.json()["detail"]

        written = client.post(
            "/memories", json={"coord": "4", "payload": {"text": "new"}}, headers=auth
        )
        assert written.status_code == 200 and written.json()["indexed"] is True

        # another replica switched and dropped the previous collection
        backends = client.app.state.backends  # type: ignore[attr-defined]
        client.portal.call(backends.collections.drop, old)  # type: ignore[union-attr]
        late = client.post("/memories/search", json={"vector": [0.1] * 32}, headers=auth)
        assert late.status_code == 400  # searched the new collection: 64 values now
        _wait(lambda: state()["state"] == "switched", "this replica switched too")
        found = client.post(
            "/memories/search", json={"query": "compass", "mode": "vector"}, headers=auth
        )
        assert found.status_code == 200
        assert "somamemory_reembed_switches_total 1.0" in client.get("/metrics").text


async def _drop_vector(uri: str, name: str, namespace: str, coord: str) -> None:
    catalogue = MilvusCatalogue(uri, token=None, timeout=5)
    try:
        store = catalogue.open(name, dim=64)
        await store.delete(namespace, [coord])
        await store.flush()
    finally:
        await catalogue.close()


def test_a_restarted_rebuild_enqueues_only_the_namespaces_the_new_collection_lacks(
    make_settings: Callable[..., Settings], tmp_path: Path, database: str
) -> None:
    complete, lacking = (f"{label}-{uuid.uuid4().hex[:8]}" for label in ("complete", "lacking"))

    def auth(namespace: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {TOKEN}", "X-Soma-Namespace": namespace}

    common = {"data_dir": tmp_path, "postgres_url": database, "reconcile_interval_seconds": 0.5}
    before = make_settings(force_hash_embeddings=True, embedding_dim=32, **common)
    with TestClient(create_app(before)) as client:
        for namespace, count in ((complete, 5), (lacking, 3)):
            items = [{"coord": str(i), "payload": {"text": f"note {i}"}} for i in range(count)]
            written = client.post("/memories/batch", json={"items": items}, headers=auth(namespace))
            assert written.status_code == 200
    asyncio.run(_execute(database, HOLD_BACK))

    after = make_settings(force_hash_embeddings=True, embedding_dim=64, **common)
    with TestClient(create_app(after)) as client:  # the rebuild runs, held back from completing

        def settled() -> bool:
            # read the outbox itself: /health's backlog is the reconciler's last round's, and
            # may predate the rebuild's enqueueing
            health = client.get("/health", headers=auth(complete)).json()
            return health["reembedding"]["total"] == 8 and asyncio.run(_owed(database)) == 1

        _wait(settled, "every memory is in the new collection")
        target = client.app.state.backends.plan.target  # type: ignore[attr-defined]
    # a crash lost one vector of one namespace
    asyncio.run(_drop_vector(str(tmp_path / "milvus.db"), target, lacking, "1.0"))

    with TestClient(create_app(after)) as client:

        def shown() -> dict:
            return client.get("/health", headers=auth(lacking)).json()["reembedding"]

        _wait(lambda: shown()["state"] == "building", "the rebuild is under way again")
        assert shown()["total"] == 3  # the lacking namespace only
        asyncio.run(_execute(database, "DELETE FROM pending_vectors WHERE namespace = 'held-back'"))
        _wait(lambda: shown()["state"] == "switched", "the switch")
        for namespace, count in ((complete, 5), (lacking, 3)):
            stats = client.get("/stats", headers=auth(namespace)).json()
            assert stats["vector_count"] == stats["total_memories"] == count
