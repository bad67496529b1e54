"""Reads as of a time, across versions, a delete and a re-creation; the purge of kept history.

Real PostgreSQL (the history), Redis and milvus-lite through the session's app. Moments are
taken from the timestamps the service answered, so nothing sleeps.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from fastapi.testclient import TestClient

from somamemory.history import HistoryPurge
from somamemory.settings import Settings

FUTURE = "2999-01-01T00:00:00Z"


def _store(client: TestClient, headers: dict[str, str], coord: str, n: int) -> dict[str, Any]:
    response = client.post("/memories", json={"coord": coord, "payload": {"n": n}}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def _as_of(client: TestClient, headers: dict[str, str], coord: str, moment: str) -> int | None:
    """The payload's n of the version current at ``moment``; None on 404."""
    response = client.get(f"/memories/{coord}", params={"as_of": moment}, headers=headers)
    if response.status_code == 404:
        assert response.json()["code"] == "memory_not_found"
        return None
    assert response.status_code == 200, response.text
    n: int = response.json()["memory"]["payload"]["n"]
    return n


def _at(moment: str, micros: int = 0) -> str:
    """``moment`` moved by ``micros`` microseconds, as ISO 8601."""
    return (datetime.fromisoformat(moment) + timedelta(microseconds=micros)).isoformat()


def _versions(client: TestClient, headers: dict[str, str], coord: str) -> list[dict[str, Any]]:
    response = client.get(f"/memories/{coord}/versions", headers=headers)
    assert response.status_code == 200, response.text
    versions: list[dict[str, Any]] = response.json()["versions"]
    return versions


def test_as_of_answers_the_version_current_then_across_a_delete_and_a_new_life(
    client: TestClient, headers: dict[str, str]
) -> None:
    _store(client, headers, "1", 1)
    _store(client, headers, "1", 2)
    first, second = _versions(client, headers, "1")
    _store(client, headers, "7", 7)
    link = {"from_coord": "7", "to_coord": "1"}
    assert client.post("/graph/link", json=link, headers=headers).status_code == 200

    assert _as_of(client, headers, "1", _at(first["created_at"], -1)) is None  # not yet
    assert _as_of(client, headers, "1", first["updated_at"]) == 1
    assert _as_of(client, headers, "1", _at(second["updated_at"], -1)) == 1  # between
    assert _as_of(client, headers, "1", second["updated_at"]) == 2
    assert _as_of(client, headers, "1", FUTURE) == 2  # the future reads now

    assert client.delete("/memories/1", headers=headers).json()["deleted"] is True
    assert client.get("/memories/1", headers=headers).status_code == 404
    assert client.get("/memories/1/versions", headers=headers).status_code == 404
    assert client.get("/memories/1/deletion", headers=headers).json()["canonical"] is True
    neighbors = client.get("/graph/neighbors", params={"coord": "7"}, headers=headers)
    assert neighbors.json()["neighbors"] == []  # the link went with the memory
    stats = client.get("/stats", headers=headers).json()
    assert stats["total_memories"] == 1  # memory 7: kept history is no memory
    assert _as_of(client, headers, "1", FUTURE) is None  # deleted by now
    assert _as_of(client, headers, "1", second["updated_at"]) == 2  # still there before

    # written again: the versions go on, and the gap reads as deleted
    assert _store(client, headers, "1", 3)["version"] == 3
    old_first, old_second, third = _versions(client, headers, "1")
    assert (old_first["deleted_at"], third["deleted_at"]) == (None, None)
    deleted_at = old_second["deleted_at"]
    assert second["updated_at"] < deleted_at < third["updated_at"]
    assert _as_of(client, headers, "1", _at(deleted_at, -1)) == 2
    assert _as_of(client, headers, "1", deleted_at) is None
    assert _as_of(client, headers, "1", _at(third["updated_at"], -1)) is None
    assert _as_of(client, headers, "1", third["updated_at"]) == 3
    assert _as_of(client, headers, "1", FUTURE) == 3
    assert _as_of(client, headers, "1", first["updated_at"]) == 1


def test_as_of_takes_only_an_iso_time_with_a_zone(
    client: TestClient, headers: dict[str, str]
) -> None:
    _store(client, headers, "2", 1)
    for bad in ("yesterday", "2026-12-06T10:00:00", "", "2026-13-01T00:00:00Z"):
        response = client.get("/memories/2", params={"as_of": bad}, headers=headers)
        assert response.status_code == 400, bad
        assert response.json()["code"] == "invalid_input" and "as_of" in response.json()["detail"]
    offset = client.get(
        "/memories/2", params={"as_of": "2999-01-01T02:00:00+02:00"}, headers=headers
    )
    assert offset.status_code == 200


async def _versions_in_postgres(url: str, namespace: str, coord: str) -> list[int]:
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch(
            "SELECT version FROM memory_versions WHERE namespace = $1 AND coord = $2 ORDER BY 1",
            namespace,
            coord,
        )
    finally:
        await connection.close()
    return [row["version"] for row in rows]


async def _due_deletions(url: str, cutoff: datetime) -> int:
    connection = await asyncpg.connect(url)
    try:
        due: int = await connection.fetchval(
            "SELECT count(*) FROM memory_versions WHERE deleted_at < $1", cutoff
        )
    finally:
        await connection.close()
    return due


def test_the_purge_drops_deleted_history_past_its_retention_only(
    client: TestClient, headers: dict[str, str], namespace: str, settings: Settings
) -> None:
    _store(client, headers, "5", 1)
    moment = _versions(client, headers, "5")[0]["updated_at"]
    client.delete("/memories/5", headers=headers)
    _store(client, headers, "6", 1)  # an earlier life, then a live one
    client.delete("/memories/6", headers=headers)
    _store(client, headers, "6", 2)
    live = client.app.state.backends.live  # type: ignore[attr-defined]
    now = datetime.now(UTC)

    def purge_at(clock: datetime) -> int:
        purge = HistoryPurge(live, retention_seconds=3600, clock=lambda: clock)
        purged: int = client.portal.call(purge.run_once)  # type: ignore[union-attr]
        return purged

    purge_at(now)  # within the retention: kept
    assert _as_of(client, headers, "5", moment) == 1
    assert [v["version"] for v in _versions(client, headers, "6")] == [1, 2]

    # two replicas purging at once take different deletions: each due one is purged once
    later = now + timedelta(hours=2)
    due = client.portal.call(_due_deletions, settings.postgres_url, later - timedelta(hours=1))  # type: ignore[union-attr]
    assert due >= 2

    async def two_replicas() -> list[int]:
        purges = [HistoryPurge(live, retention_seconds=3600, clock=lambda: later) for _ in "ab"]
        return list(await asyncio.gather(*(purge.run_once() for purge in purges)))

    assert sum(client.portal.call(two_replicas)) == due  # type: ignore[union-attr]
    assert _as_of(client, headers, "5", moment) is None
    assert [v["version"] for v in _versions(client, headers, "6")] == [2]
    assert _as_of(client, headers, "6", FUTURE) == 2
    assert (
        client.portal.call(  # type: ignore[union-attr]
            _versions_in_postgres, settings.postgres_url, namespace, "5.0"
        )
        == []
    )
    assert _store(client, headers, "5", 9)["version"] == 1  # its history gone: a new memory
