"""Vector repair never wedges: a refused entry backs off alone, then parks, and says why.

Before: a payload integer beyond int64 failed the Milvus upsert of its whole batch, and the
reconciler retried that batch first every round, so no other tenant's backlog was ever repaired.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import asyncpg
import pytest
from fastapi.testclient import TestClient

from somamemory.app import create_app
from somamemory.settings import Settings
from somamemory.stores.outbox import MAX_ATTEMPTS

from ..conftest import TOKEN, migrated_database


def _auth(namespace: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}", "X-Soma-Namespace": namespace}


@pytest.fixture
def database() -> Iterator[str]:
    with migrated_database() as url:  # its own: no other app's reconciler may settle its outbox
        yield url


def _sql(url: str, statement: str, *args: Any) -> Any:
    async def run() -> Any:
        connection = await asyncpg.connect(url)
        try:
            return await connection.fetch(statement, *args)
        finally:
            await connection.close()

    return asyncio.run(run())


def _wait_for(condition: Callable[[], bool], what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.1)


def test_an_integer_beyond_int64_is_stored_and_indexed(client: TestClient, namespace: str) -> None:
    body = {"coord": "64,64", "payload": {"text": "a very large counter", "n": 2**64}}
    stored = client.post("/memories", json=body, headers=_auth(namespace))
    assert stored.status_code == 200 and stored.json()["indexed"] is True
    read = client.get("/memories/64,64", headers=_auth(namespace)).json()["memory"]
    assert read["payload"]["n"] == 2**64
    hits = client.post(
        "/memories/search", json={"query": "a very large counter"}, headers=_auth(namespace)
    ).json()["memories"]
    assert hits[0]["coord"] == "64.0,64.0"


def test_a_refused_vector_backs_off_alone_and_parks_while_other_tenants_are_repaired(
    make_settings: Callable[..., Settings], database: str
) -> None:
    # judges repair, not meaning: hash embeddings keep it quick
    settings = make_settings(
        postgres_url=database, force_hash_embeddings=True, reconcile_interval_seconds=0.2
    )
    with TestClient(create_app(settings)) as client:
        for namespace in ("tenant-a", "tenant-b"):
            for n in range(5):
                body = {"coord": f"{n}", "payload": {"text": f"{namespace} note {n}"}}
                assert client.post("/memories", json=body, headers=_auth(namespace)).is_success
        # An edit made outside the service: a stored client vector of the wrong dimension, which
        # Milvus refuses. Every vector is owed again, the refused one first in the queue.
        _sql(
            database,
            "INSERT INTO memories (namespace, coord, memory_type, payload, importance, vector,"
            " version, created_at, updated_at) VALUES ('tenant-a', '99.0', 'episodic',"
            ' \'{"text": "bad"}\', 0, ARRAY[1.0, 2.0]::real[], 1, now(), now())',
        )
        _sql(
            database,
            "INSERT INTO pending_vectors (namespace, coord, version, enqueued_at)"
            " SELECT namespace, coord, version, now() - interval '1 hour' - (coord = '99.0')::int"
            " * interval '1 hour' FROM memories ON CONFLICT (namespace, coord) DO UPDATE"
            " SET enqueued_at = EXCLUDED.enqueued_at",
        )

        def outbox() -> list[asyncpg.Record]:
            return _sql(database, "SELECT coord, attempts, last_error FROM pending_vectors")

        _wait_for(lambda: [r["coord"] for r in outbox()] == ["99.0"], "the good entries settle")
        refused = outbox()[0]
        assert refused["attempts"] >= 1 and "dim" in refused["last_error"].lower()

        # one more refusal after the last allowed attempt parks it
        _sql(
            database,
            "UPDATE pending_vectors SET attempts = $1, retry_at = now() WHERE coord = '99.0'",
            MAX_ATTEMPTS - 1,
        )
        _wait_for(lambda: outbox()[0]["attempts"] == MAX_ATTEMPTS, "the entry parks")
        health = client.get("/health", headers=_auth("tenant-a")).json()
        assert health["reconcile_parked"] == 1
        assert health["parked_examples"][0]["coord"] == "99.0"
        assert "somamemory_reconcile_parked 1.0" in client.get("/metrics").text
        for namespace in ("tenant-a", "tenant-b"):
            stats = client.get("/stats", headers=_auth(namespace)).json()
            assert stats["vector_count"] == 5

        # a new write of the memory unparks it, and this time its vector is accepted
        fixed = client.post(
            "/memories",
            json={"coord": "99", "payload": {"text": "fixed"}},
            headers=_auth("tenant-a"),
        )
        assert fixed.json()["indexed"] is True
        _wait_for(lambda: outbox() == [], "the outbox drains")
