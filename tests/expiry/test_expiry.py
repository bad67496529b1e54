"""Expiry over HTTP on PostgreSQL, Redis and milvus-lite, with a hand-moved clock: expired
memories are never answered, the sweeper removes them everywhere in bounded batches, reads
refresh a TTL when the write asked for it, and bad expiries are 400s."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis

from somamemory.expiry import ExpiryPolicy
from somamemory.settings import Settings

from ..conftest import DIM, TOKEN
from .conftest import Life


def _headers(namespace: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}", "X-Soma-Namespace": namespace}


def _unit(*weights: float) -> list[float]:
    vector = [0.0] * DIM
    for i, weight in enumerate(weights):
        vector[i] = weight
    return vector


def _store(life: Life, namespace: str, coord: str, **body: Any) -> dict[str, Any]:
    response = life.client.post(
        "/memories", json={"coord": coord, **body}, headers=_headers(namespace)
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def _search(life: Life, namespace: str, **body: Any) -> list[str]:
    response = life.client.post("/memories/search", json=body, headers=_headers(namespace))
    assert response.status_code == 200, response.text
    return [hit["coord"] for hit in response.json()["memories"]]


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"ttl_seconds": 60, "expires_at": "2099-01-01T00:00:00Z"}, "not both"),
        ({"ttl_seconds": 0}, "between 1 and 86400"),
        ({"ttl_seconds": -5}, "between 1 and 86400"),
        ({"ttl_seconds": 86_401}, "between 1 and 86400"),
        ({"expires_at": "next tuesday"}, "ISO 8601"),
        ({"expires_at": "2026-12-31T10:00:00"}, "time zone"),
        ({"expires_at": "2001-01-01T00:00:00Z"}, "in the future"),
        ({"expires_at": "2999-01-01T00:00:00Z"}, "within 86400 seconds"),
        ({"refresh_on_read": True}, "refresh_on_read needs"),
    ],
)
def test_a_bad_expiry_is_a_400_saying_what_is_wrong(
    life: Life, namespace: str, fields: dict[str, Any], words: str
) -> None:
    body = {"coord": "1", "payload": {"text": "x"}, **fields}
    response = life.client.post("/memories", json=body, headers=_headers(namespace))
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_input"
    assert words in response.json()["detail"]
    batch = life.client.post(
        "/memories/batch", json={"items": [body]}, headers=_headers(namespace)
    ).json()
    assert batch["results"][0]["status"] == 400 and words in batch["results"][0]["detail"]


def test_an_expired_memory_is_never_answered_even_before_the_sweep(
    life: Life, namespace: str
) -> None:
    headers = _headers(namespace)
    short = _store(
        life,
        namespace,
        "1",
        payload={"text": "parking ticket 4711"},
        ttl_seconds=60,
        vector=_unit(1.0),
    )
    until = (life.clock() + timedelta(hours=2)).isoformat()
    _store(
        life,
        namespace,
        "2",
        payload={"text": "parking ticket 4712"},
        expires_at=until,
        vector=_unit(0.9, 0.1),
    )
    _store(life, namespace, "3", payload={"text": "parking ticket 4713"}, vector=_unit(0.8, 0.2))
    read = life.client.get("/memories/1", headers=headers).json()["memory"]
    expected = life.clock() + timedelta(seconds=60)
    assert datetime.fromisoformat(read["expires_at"]) == expected.replace(
        microsecond=expected.microsecond
    )
    assert short["version"] == 1
    everything = {"1.0", "2.0", "3.0"}
    assert set(_search(life, namespace, vector=_unit(1.0), mode="vector")) == everything

    life.clock.advance(61)  # past the first memory's expiry; no sweep has run

    assert life.client.get("/memories/1", headers=headers).status_code == 404
    assert life.client.get("/memories/1/versions", headers=headers).status_code == 404
    assert life.client.get("/stats", headers=headers).json()["total_memories"] == 2
    live = {"2.0", "3.0"}
    assert set(_search(life, namespace, vector=_unit(1.0), mode="vector")) == live
    assert set(_search(life, namespace, query="parking ticket", mode="keyword")) == live
    assert set(_search(life, namespace, query="parking ticket", mode="hybrid")) == live
    assert set(_search(life, namespace, query="parking ticket", rank="blended")) == live
    # still stored: invisible by the filter on expires_at, not by a sweep
    rows = life.sql("SELECT coord FROM memories WHERE namespace = $1", namespace)
    assert {row["coord"] for row in rows} == everything

    life.clock.advance(2 * 3600)  # the second memory expires too
    assert life.client.get("/memories/2", headers=headers).status_code == 404
    assert life.client.get("/stats", headers=headers).json()["total_memories"] == 1


def test_the_sweeper_removes_expired_memories_everywhere_in_bounded_batches(
    life: Life, namespace: str, settings: Settings, redis_client: redis.Redis
) -> None:
    headers = _headers(namespace)
    for n in range(5):
        _store(life, namespace, f"{n}", payload={"text": f"note {n}"}, ttl_seconds=10)
        _store(life, namespace, f"{n}", payload={"text": f"note {n} again"}, ttl_seconds=10)
    _store(life, namespace, "9", payload={"text": "kept"})
    # a stale cache entry of an expiring memory (as an older write would have left it)
    cache_key = f"{settings.redis_key_prefix}:cache:{namespace}:0.0"
    redis_client.set(cache_key, b'{"stale": true}', ex=300)
    assert life.service.vectors is not None
    assert life.run(lambda: life.service.vectors.get_vector(namespace, "0.0")) is not None
    expired_before = life.metric("somamemory_memories_expired_total")

    life.clock.advance(11)
    sweeper = life.sweeper(batch_size=2, max_batches=2)
    first = life.run(sweeper.run_once)
    assert first == 4  # two batches of two, the round's bound; the rest waits
    left = life.sql(
        "SELECT count(*) AS n FROM memories WHERE namespace = $1 AND coord <> '9.0'", namespace
    )
    assert left[0]["n"] == 1
    assert life.run(sweeper.run_once) == 1
    assert life.run(sweeper.run_once) == 0

    rows = life.sql("SELECT coord FROM memories WHERE namespace = $1", namespace)
    assert [row["coord"] for row in rows] == ["9.0"]
    history = life.sql("SELECT count(*) AS n FROM memory_versions WHERE namespace = $1", namespace)
    assert history[0]["n"] == 1  # the kept memory's one version; the expired ones' are gone
    removals = life.sql(
        "SELECT coord FROM pending_vectors WHERE namespace = $1 AND version = 0", namespace
    )
    assert {row["coord"] for row in removals} == {f"{n}.0" for n in range(5)}  # via the outbox
    assert not redis_client.exists(cache_key)
    assert life.metric("somamemory_memories_expired_total") == expired_before + 5

    life.reconcile()  # the outbox's removals reach Milvus
    for n in range(5):
        status = life.client.get(f"/memories/{n}/deletion", headers=headers).json()
        assert status["clear"] is True, status
    assert life.client.get("/memories/9", headers=headers).status_code == 200
    assert life.run(lambda: life.service.vectors.count(namespace)) == 1


def test_a_read_refreshes_the_ttl_only_when_the_write_asked_for_it(
    life: Life, namespace: str
) -> None:
    headers = _headers(namespace)
    _store(
        life, namespace, "1", payload={"text": "kept alive"}, ttl_seconds=100, refresh_on_read=True
    )
    _store(life, namespace, "2", payload={"text": "not refreshed"}, ttl_seconds=100)
    for _ in range(3):  # 80 s apart: each read keeps it 100 s more
        life.clock.advance(80)
        read = life.client.get("/memories/1", headers=headers)
        assert read.status_code == 200
        assert datetime.fromisoformat(
            read.json()["memory"]["expires_at"]
        ) == life.clock() + timedelta(seconds=100)
    stored = life.sql(
        "SELECT expires_at FROM memories WHERE namespace = $1 AND coord = '1.0'", namespace
    )
    assert stored[0]["expires_at"] == life.clock() + timedelta(seconds=100)
    assert life.client.get("/memories/2", headers=headers).status_code == 404  # 240 s > 100 s
    life.clock.advance(101)
    assert life.client.get("/memories/1", headers=headers).status_code == 404


def test_an_expiry_given_as_a_time_and_the_default_ttl_of_a_type() -> None:
    now = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    policy = ExpiryPolicy(default_ttl_seconds={"episodic": 604_800}, max_ttl_seconds=10**8)
    assert policy.resolve("episodic", now) == (now + timedelta(days=7), None)
    assert policy.resolve("semantic", now) == (None, None)
    assert policy.resolve("semantic", now, ttl_seconds=30) == (now + timedelta(seconds=30), None)
    at = policy.resolve(
        "semantic", now, expires_at="2026-12-06T14:00:00+01:00", refresh_on_read=True
    )
    assert at == (datetime(2026, 12, 6, 13, 0, tzinfo=UTC), 3600)


def test_the_default_ttls_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOMA_DEFAULT_TTL_SECONDS", '{"episodic": 604800}')
    assert Settings.model_validate({}).default_ttl_seconds == {"episodic": 604800}
    monkeypatch.setenv("SOMA_DEFAULT_TTL_SECONDS", '{"episodic": 0}')
    with pytest.raises(ValueError, match="positive"):
        Settings.model_validate({})
