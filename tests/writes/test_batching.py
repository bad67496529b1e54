"""Group commit and ordering over HTTP, batching on and off, on the real backends."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from somamemory.app import create_app
from somamemory.settings import Settings


@pytest.fixture(scope="module", params=["batching-off", "batching-on"])
def writer(
    request: pytest.FixtureRequest, make_settings: Callable[..., Settings]
) -> Iterator[TestClient]:
    batching = request.param == "batching-on"
    settings = make_settings(enable_batch_upsert=batching, batch_size=100, batch_flush_ms=20)
    with TestClient(create_app(settings)) as client:
        yield client


def _metric(client: TestClient, name: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def test_concurrent_writes_all_land_and_batching_coalesces_them(
    writer: TestClient, headers: dict[str, str]
) -> None:
    flushes_before = _metric(writer, "somamemory_batch_size_count")

    def store(i: int) -> int:
        body = {"coord": f"{i},1", "payload": {"text": f"memory {i}"}}
        return writer.post("/memories", json=body, headers=headers).status_code

    with ThreadPoolExecutor(32) as pool:
        assert set(pool.map(store, range(64))) == {200}
    stats = writer.get("/stats", headers=headers).json()
    assert stats["total_memories"] == 64 and stats["vector_count"] == 64
    flushes = _metric(writer, "somamemory_batch_size_count") - flushes_before
    if writer.app.state.settings.enable_batch_upsert:  # type: ignore[attr-defined]
        assert 1 <= flushes < 64  # fewer commits than writes
    else:
        assert flushes == 0


def test_concurrent_upserts_of_one_coord_give_a_gap_free_version_sequence(
    writer: TestClient, headers: dict[str, str]
) -> None:
    def store(i: int) -> int:
        body = {"coord": "7,7", "payload": {"text": f"take {i}", "i": i}}
        response = writer.post("/memories", json=body, headers=headers)
        assert response.status_code == 200, response.text
        return int(response.json()["version"])

    with ThreadPoolExecutor(16) as pool:
        versions = sorted(pool.map(store, range(40)))
    assert versions == list(range(1, 41))
    history = writer.get("/memories/7,7/versions", headers=headers).json()["versions"]
    assert [v["version"] for v in history] == list(range(1, 41))
    current = writer.get("/memories/7,7", headers=headers).json()["memory"]
    assert current["version"] == 40
    assert current["payload"] == history[-1]["payload"]
    # the vector is the last version's: its exact text is found first
    hits = writer.post(
        "/memories/search",
        json={"query": current["payload"]["text"], "top_k": 1},
        headers=headers,
    ).json()["memories"]
    assert hits[0]["coord"] == "7.0,7.0" and hits[0]["version"] == 40
