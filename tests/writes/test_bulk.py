"""POST /memories/batch: per-item results, atomic mode, limits."""

from __future__ import annotations

from fastapi.testclient import TestClient

from somamemory.settings import Settings


def test_one_bad_item_does_not_sink_the_others(client: TestClient, headers: dict[str, str]) -> None:
    items = [
        {"coord": "1", "payload": {"text": "first"}},
        {"coord": "1,,2", "payload": {}},
        {"coord": "3", "payload": "not an object"},
        {"coord": "4", "payload": {"text": "fourth"}, "memory_type": "semantic"},
    ]
    response = client.post("/memories/batch", json={"items": items}, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["written"] == 2 and body["failed"] == 2
    results = body["results"]
    assert [r["index"] for r in results] == [0, 1, 2, 3]
    assert [r["status"] for r in results] == [200, 400, 422, 200]
    assert "empty" in results[1]["detail"] and "payload" in results[2]["detail"]
    assert results[3]["coord"] == "4.0" and results[3]["version"] == 1
    assert client.get("/memories/4", headers=headers).json()["memory"]["memory_type"] == "semantic"
    assert client.get("/stats", headers=headers).json()["total_memories"] == 2


def test_atomic_batches_write_nothing_when_one_item_is_bad(
    client: TestClient, headers: dict[str, str]
) -> None:
    items = [{"coord": "1", "payload": {"a": 1}}, {"coord": "nan", "payload": {}}]
    response = client.post(
        "/memories/batch", json={"items": items, "atomic": True}, headers=headers
    )
    assert response.status_code == 400
    body = response.json()
    assert "nothing was written" in body["detail"]
    assert [r["status"] for r in body["results"]] == [409, 400]
    assert client.get("/stats", headers=headers).json()["total_memories"] == 0


def test_two_writes_to_one_coord_in_one_batch_keep_their_order(
    client: TestClient, headers: dict[str, str]
) -> None:
    items = [
        {"coord": "5", "payload": {"text": "older"}},
        {"coord": "5.0", "payload": {"text": "newer"}},
    ]
    results = client.post("/memories/batch", json={"items": items}, headers=headers).json()
    assert [r["version"] for r in results["results"]] == [1, 2]
    assert client.get("/memories/5", headers=headers).json()["memory"]["payload"] == {
        "text": "newer"
    }
    versions = client.get("/memories/5/versions", headers=headers).json()["versions"]
    assert [v["payload"]["text"] for v in versions] == ["older", "newer"]
    hits = client.post(
        "/memories/search", json={"query": "newer", "top_k": 1}, headers=headers
    ).json()["memories"]
    assert hits[0]["coord"] == "5.0" and hits[0]["version"] == 2


def test_many_items_are_written_and_searchable(client: TestClient, headers: dict[str, str]) -> None:
    items = [
        {"coord": f"{i},0", "payload": {"text": f"bulk memory number {i}"}} for i in range(300)
    ]
    body = client.post("/memories/batch", json={"items": items}, headers=headers).json()
    assert body["written"] == 300 and all(r["indexed"] for r in body["results"])
    stats = client.get("/stats", headers=headers).json()
    assert stats["total_memories"] == 300 and stats["vector_count"] == 300
    hits = client.post(
        "/memories/search", json={"query": "bulk memory number 123", "top_k": 1}, headers=headers
    ).json()["memories"]
    assert hits[0]["coord"] == "123.0,0.0"


def test_too_many_items_is_413(
    client: TestClient, headers: dict[str, str], settings: Settings
) -> None:
    items = [{"coord": str(i), "payload": {}} for i in range(settings.max_batch_items + 1)]
    response = client.post("/memories/batch", json={"items": items}, headers=headers)
    assert response.status_code == 413
    assert "SOMA_MAX_BATCH_ITEMS" in response.json()["detail"]
