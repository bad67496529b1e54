"""Decay and blended ranking, checked against values computed by hand, with a hand-moved
clock; eviction past a namespace's cap, lowest effective importance first."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from somamemory.decay import DecayPolicy, age_seconds
from somamemory.models import Memory

from ..conftest import DIM, TOKEN
from .conftest import Life

DAY = 86_400.0
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _headers(namespace: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}", "X-Soma-Namespace": namespace}


def _vector(x: float, y: float) -> list[float]:
    return [x, y] + [0.0] * (DIM - 2)


def _store(life: Life, namespace: str, coord: str, **body: Any) -> None:
    body = {"coord": coord, "payload": {"text": f"memory {coord}"}, **body}
    response = life.client.post("/memories", json=body, headers=_headers(namespace))
    assert response.status_code == 200, response.text


def _written_at(life: Life, namespace: str, ages: dict[str, float]) -> None:
    """Make each memory last written ``ages[coord]`` seconds before T0, and the clock T0."""
    for coord, age in ages.items():
        life.sql(
            "UPDATE memories SET updated_at = $3 WHERE namespace = $1 AND coord = $2",
            namespace,
            coord,
            T0 - timedelta(seconds=age),
        )
    life.clock.now = T0


def _memory(importance: float, memory_type: str = "episodic") -> Memory:
    return Memory("ns", "1.0", memory_type, {}, importance, 1, T0, T0)  # type: ignore[arg-type]


def test_effective_importance_halves_every_half_life_down_to_the_floor() -> None:
    policy = DecayPolicy(half_life_seconds={"episodic": DAY, "semantic": 10 * DAY}, floor=0.1)
    assert policy.effective_importance(_memory(0.8), 0) == 0.8
    assert policy.effective_importance(_memory(0.8), DAY) == pytest.approx(0.4)
    assert policy.effective_importance(_memory(0.8), 2 * DAY) == pytest.approx(0.2)
    assert policy.effective_importance(_memory(0.8, "semantic"), DAY) == pytest.approx(
        0.8 * 0.5**0.1
    )
    assert policy.effective_importance(_memory(0.8), 4 * DAY) == 0.1  # 0.05 < floor
    read = T0 + timedelta(hours=5)  # age counts from the last read when it is later
    assert age_seconds(_memory(1.0), T0 + timedelta(hours=6), read) == 3600


def test_blended_ranking_matches_the_hand_computed_scores(life: Life, namespace: str) -> None:
    # weights 0.7 / 0.2 / 0.1, recency half-life 1 day, episodic half-life 7 days, semantic 90
    _store(life, namespace, "1", vector=_vector(1.0, 0.0), importance=0.0)
    _store(life, namespace, "2", vector=_vector(1.0, 1.0), importance=1.0)
    _store(life, namespace, "3", vector=_vector(0.0, 1.0), importance=1.0, memory_type="semantic")
    _written_at(life, namespace, {"1.0": 2 * DAY, "2.0": 0.0, "3.0": 90 * DAY})
    expected = {
        "1.0": 0.7 * 1.0 + 0.2 * 0.0 + 0.1 * 0.25,  # 0.725
        "2.0": 0.7 * math.sqrt(0.5) + 0.2 * 1.0 + 0.1 * 1.0,  # 0.794975
        "3.0": 0.7 * 0.0 + 0.2 * 0.5 + 0.1 * 0.5**90,  # 0.1
    }
    search = {"vector": _vector(1.0, 0.0), "mode": "vector", "top_k": 3}
    by_similarity = life.client.post(
        "/memories/search", json=search, headers=_headers(namespace)
    ).json()["memories"]
    assert [hit["coord"] for hit in by_similarity] == ["1.0", "2.0", "3.0"]
    blended = life.client.post(
        "/memories/search", json={**search, "rank": "blended"}, headers=_headers(namespace)
    ).json()["memories"]
    assert [hit["coord"] for hit in blended] == ["2.0", "1.0", "3.0"]
    for hit in blended:
        assert hit["score"] == pytest.approx(expected[hit["coord"]], abs=1e-5)

    # a read makes a memory recent again (recorded in memory now, in the store in a batch)
    life.clock.advance(DAY)
    assert life.client.get("/memories/1", headers=_headers(namespace)).status_code == 200
    again = life.client.post(
        "/memories/search", json={**search, "rank": "blended"}, headers=_headers(namespace)
    ).json()["memories"]
    scores = {hit["coord"]: hit["score"] for hit in again}
    assert scores["1.0"] == pytest.approx(0.7 + 0.0 + 0.1, abs=1e-5)
    assert scores["2.0"] == pytest.approx(
        0.7 * math.sqrt(0.5) + 0.2 * 0.5 ** (1 / 7) + 0.1 * 0.5, abs=1e-5
    )
    assert again[0]["coord"] == "1.0"
    assert (
        life.sql(
            "SELECT accessed_at FROM memories WHERE namespace = $1 AND coord = '1.0'", namespace
        )[0]["accessed_at"]
        is None
    )  # no write on the read itself
    assert life.run(lambda: life.service.reads.flush(life.service.live.store)) >= 1
    assert (
        life.sql(
            "SELECT accessed_at FROM memories WHERE namespace = $1 AND coord = '1.0'", namespace
        )[0]["accessed_at"]
        == life.clock()
    )


def test_an_unknown_ranking_is_a_400(life: Life, namespace: str) -> None:
    response = life.client.post(
        "/memories/search", json={"query": "x", "rank": "loudest"}, headers=_headers(namespace)
    )
    assert response.status_code == 400
    assert "rank must be one of similarity, blended" in response.json()["detail"]


def test_a_namespace_over_its_cap_evicts_the_lowest_effective_importance_everywhere(
    life: Life, namespace: str
) -> None:
    headers = _headers(namespace)
    evicted_before = life.metric("somamemory_memories_evicted_total")
    life.service.max_memories = 3
    _store(life, namespace, "1", importance=0.9)  # important once, unread for 14 days: 0.225
    _store(life, namespace, "2", importance=0.3)
    _store(life, namespace, "3", importance=0.5)
    _written_at(life, namespace, {"1.0": 14 * DAY, "2.0": 0.0, "3.0": 0.0})

    _store(life, namespace, "4", importance=0.4)  # the fourth: the lowest (0.225) goes
    assert life.client.get("/memories/1", headers=headers).status_code == 404
    assert life.metric("somamemory_memories_evicted_total") == evicted_before + 1
    _store(life, namespace, "5", importance=0.35)  # then 2.0 (0.3)
    assert life.metric("somamemory_memories_evicted_total") == evicted_before + 2
    stats = life.client.get("/stats", headers=headers).json()
    assert stats["total_memories"] == 3
    for coord in ("3", "4", "5"):
        assert life.client.get(f"/memories/{coord}", headers=headers).status_code == 200
    for coord in ("1", "2"):  # gone from every store, through the delete path
        status = life.client.get(f"/memories/{coord}/deletion", headers=headers).json()
        assert status["clear"] is True, status
