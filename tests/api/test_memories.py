"""Store, read, upsert, versions, delete and stats over HTTP on the real backends."""

from __future__ import annotations

import redis
from fastapi.testclient import TestClient

from somamemory.settings import Settings

from ..conftest import DIM


def _store(client: TestClient, headers: dict[str, str], coord: str, **body: object) -> dict:
    response = client.post("/memories", json={"coord": coord, **body}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def _metric(client: TestClient, name: str, label: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(name) and label in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_stored_memory_reads_back_from_store_then_cache(
    client: TestClient,
    headers: dict[str, str],
    namespace: str,
    settings: Settings,
    redis_client: redis.Redis,
) -> None:
    stored = _store(client, headers, "1000,1001", payload={"text": "the cat sat"})
    assert stored == {
        "coord": "1000.0,1001.0",
        "memory_type": "episodic",
        "ok": True,
        "namespace": namespace,
        "version": 1,
        "indexed": True,
    }
    cache_key = f"{settings.redis_key_prefix}:cache:{namespace}:1000.0,1001.0"
    redis_client.delete(cache_key)  # the write filled it; start from a cold cache
    misses = _metric(client, "somamemory_cache_requests_total", 'result="miss"')
    hits = _metric(client, "somamemory_cache_requests_total", 'result="hit"')

    first = client.get("/memories/1000.0,1001.0", headers=headers)
    assert first.status_code == 200
    assert first.json()["memory"]["payload"] == {"text": "the cat sat"}
    assert redis_client.exists(cache_key)  # filled after the canonical read
    second = client.get("/memories/1000,1001", headers=headers)
    assert second.json() == first.json()
    assert _metric(client, "somamemory_cache_requests_total", 'result="miss"') == misses + 1
    assert _metric(client, "somamemory_cache_requests_total", 'result="hit"') == hits + 1


def test_upsert_bumps_version_and_keeps_the_old_one(
    client: TestClient, headers: dict[str, str]
) -> None:
    _store(client, headers, "1,2", payload={"text": "first"})
    second = _store(client, headers, "1.0,2.0", payload={"text": "second"}, memory_type="semantic")
    assert second["version"] == 2

    current = client.get("/memories/1,2", headers=headers).json()["memory"]
    assert current["payload"] == {"text": "second"}
    assert current["memory_type"] == "semantic"
    assert current["version"] == 2

    versions = client.get("/memories/1,2/versions", headers=headers).json()
    assert [v["version"] for v in versions["versions"]] == [1, 2]
    assert [v["payload"]["text"] for v in versions["versions"]] == ["first", "second"]


def test_delete_is_idempotent_and_the_memory_is_gone(
    client: TestClient, headers: dict[str, str]
) -> None:
    _store(client, headers, "3", payload={"text": "to forget"})
    assert client.get("/memories/3", headers=headers).status_code == 200  # now cached

    first = client.delete("/memories/3.0", headers=headers)
    assert first.json()["coord"] == "3.0" and first.json()["deleted"] is True
    second = client.delete("/memories/3", headers=headers)
    assert second.json()["coord"] == "3.0" and second.json()["deleted"] is False

    assert client.get("/memories/3", headers=headers).status_code == 404
    assert client.get("/memories/3/versions", headers=headers).status_code == 404


def test_a_memory_written_again_after_a_delete_continues_its_versions(
    client: TestClient, headers: dict[str, str]
) -> None:
    _store(client, headers, "4", payload={"n": 1})
    _store(client, headers, "4", payload={"n": 2})
    client.delete("/memories/4", headers=headers)
    # the delete kept the history (time travel), so a version number never names two contents
    assert _store(client, headers, "4", payload={"n": 3})["version"] == 3
    versions = client.get("/memories/4/versions", headers=headers).json()["versions"]
    assert [(v["version"], v["payload"]["n"]) for v in versions] == [(1, 1), (2, 2), (3, 3)]
    assert [v["deleted_at"] is not None for v in versions] == [False, True, False]


def test_stats_count_live_memories_and_vectors(
    client: TestClient, headers: dict[str, str], namespace: str
) -> None:
    _store(client, headers, "1", payload={"a": 1})
    _store(client, headers, "2", payload={"a": 2}, memory_type="semantic")
    _store(client, headers, "3", payload={"a": 3})
    _store(client, headers, "3", payload={"a": 4})  # an upsert is not a new memory
    client.delete("/memories/1", headers=headers)

    stats = client.get("/stats", headers=headers).json()
    assert stats == {
        "namespace": namespace,
        "total_memories": 2,
        "episodic": 1,
        "semantic": 1,
        "vector_count": 2,
        "namespaces": {namespace: 2},
    }


def test_vector_follows_the_memory_and_leaves_with_it(
    client: TestClient, headers: dict[str, str], namespace: str
) -> None:
    vectors = client.app.state.backends.vectors  # type: ignore[attr-defined]
    own = [0.0] * (DIM - 1) + [1.0]
    _store(client, headers, "5,5", payload={"text": "x"}, vector=own)
    assert client.portal.call(vectors.get_vector, namespace, "5.0,5.0") == own  # type: ignore[union-attr]

    _store(client, headers, "5,5", payload={"text": "now embedded by the service"})
    embedded = client.portal.call(vectors.get_vector, namespace, "5.0,5.0")  # type: ignore[union-attr]
    assert embedded is not None and embedded != own

    client.delete("/memories/5,5", headers=headers)
    assert client.portal.call(vectors.get_vector, namespace, "5.0,5.0") is None  # type: ignore[union-attr]


def test_namespaces_never_see_each_other(client: TestClient, headers: dict[str, str]) -> None:
    _store(client, headers, "7,7", payload={"secret": "A's"})
    other = {**headers, "X-Soma-Namespace": headers["X-Soma-Namespace"] + "-b"}

    assert client.get("/memories/7,7", headers=other).status_code == 404
    assert client.get("/memories/7,7/versions", headers=other).status_code == 404
    stats = client.get("/stats", headers=other).json()
    assert stats["total_memories"] == 0 and stats["vector_count"] == 0
    assert client.delete("/memories/7,7", headers=other).json()["deleted"] is False
    assert client.get("/memories/7,7", headers=headers).status_code == 200  # still there for A


def test_timestamps_read_the_same_on_every_route(
    client: TestClient, headers: dict[str, str], settings: Settings, redis_client: redis.Redis
) -> None:
    _store(client, headers, "7,7", payload={"text": "one clock"})
    cached = client.get("/memories/7,7", headers=headers).json()["memory"]
    redis_client.delete(f"{settings.redis_key_prefix}:cache:{headers['X-Soma-Namespace']}:7.0,7.0")
    canonical = client.get("/memories/7,7", headers=headers).json()["memory"]
    versions = client.get("/memories/7,7/versions", headers=headers).json()["versions"]
    for field in ("created_at", "updated_at"):
        assert cached[field] == canonical[field] == versions[-1][field]
        assert cached[field].endswith("Z"), cached[field]


def test_versions_come_a_page_at_a_time(client: TestClient, headers: dict[str, str]) -> None:
    for n in range(7):
        _store(client, headers, "3,3", payload={"text": f"edit {n}"})
    seen, after = [], 0
    while True:
        page = client.get(
            "/memories/3,3/versions", params={"after": after, "limit": 3}, headers=headers
        ).json()
        assert len(page["versions"]) <= 3
        seen += [v["version"] for v in page["versions"]]
        if page["next_after"] is None:
            break
        after = page["next_after"]
    assert seen == [1, 2, 3, 4, 5, 6, 7]
    everything = client.get("/memories/3,3/versions", headers=headers).json()
    assert [v["payload"]["text"] for v in everything["versions"]][-1] == "edit 6"
    assert everything["next_after"] is None
    too_many = client.get("/memories/3,3/versions", params={"limit": 5000}, headers=headers)
    assert too_many.status_code == 422
    last = client.get("/memories/3,3/versions", params={"after": 2**63 - 1}, headers=headers)
    assert last.status_code == 200 and last.json()["versions"] == []
    beyond = client.get("/memories/3,3/versions", params={"after": 2**63}, headers=headers)
    assert beyond.status_code == 422  # a version beyond a bigint is refused, never a 500


def test_a_delete_answers_where_the_memory_is_gone_from(
    client: TestClient, headers: dict[str, str]
) -> None:
    _store(client, headers, "4,4", payload={"text": "to be forgotten"})
    assert client.get("/memories/4,4/deletion", headers=headers).json()["clear"] is False
    answer = client.delete("/memories/4,4", headers=headers).json()
    assert answer["deleted"] is True
    assert answer["receipt"] == {"canonical": "done", "cache": "done", "vector": "done"}
    status = client.get("/memories/4,4/deletion", headers=headers).json()
    assert status == {
        "coord": "4.0,4.0",
        "clear": True,
        "canonical": True,
        "cache": True,
        "vector": True,
    }
    again = client.delete("/memories/4,4", headers=headers).json()
    assert again["deleted"] is False and again["receipt"]["canonical"] == "absent"
