"""A deleted memory never comes back from the cache, whatever the interleaving of reads.

The shape an attacker found: a GET misses the cache and reads PostgreSQL; a DELETE commits and
drops the entry; the GET's fill then put the deleted memory back. Run on Redis and in-process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from somamemory.app import create_app
from somamemory.settings import Settings

ROUNDS = 60


@pytest.fixture(scope="module", params=["redis", "in-process"])
def app_client(
    request: pytest.FixtureRequest, make_settings: Callable[..., Settings]
) -> Iterator[TestClient]:
    # judges cache coherence, not meaning: hash embeddings keep the many writes cheap
    overrides: dict[str, object] = {"force_hash_embeddings": True}
    if request.param == "in-process":
        overrides["redis_host"] = "127.0.0.1"
        overrides["redis_port"] = 1  # nothing listens: the in-process cache stands in
    with TestClient(create_app(make_settings(**overrides))) as client:
        yield client


def test_deleted_memories_never_read_back_after_racing_reads(
    app_client: TestClient, headers: dict[str, str]
) -> None:
    resurrected = []
    with ThreadPoolExecutor(3) as pool:
        for n in range(ROUNDS):
            coord = f"{n},9"
            items = [{"coord": coord, "payload": {"text": f"memory {n}"}}]
            stored = app_client.post("/memories/batch", json={"items": items}, headers=headers)
            assert stored.status_code == 200, stored.text
            get = lambda c=coord: app_client.get(f"/memories/{c}", headers=headers)  # noqa: E731
            racing = [
                pool.submit(get),
                pool.submit(app_client.delete, f"/memories/{coord}", headers=headers),
                pool.submit(get),
            ]
            for future in racing:
                assert future.result().status_code in (200, 404)
            if get().status_code != 404:
                resurrected.append(coord)
    assert resurrected == [], f"{len(resurrected)} of {ROUNDS} deleted memories read back"
