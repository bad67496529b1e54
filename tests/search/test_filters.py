"""The typed filter language over HTTP: operators, missing fields, times, and 400s with a path.

Each filter is asked in every search mode: vector recall filters in Milvus, keyword recall in
PostgreSQL, and both must admit the same memories.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

MODES = ("vector", "keyword", "hybrid")

# Every text shares the word "note", so a keyword search for it reaches every memory.
MEMORIES: dict[str, dict[str, Any]] = {
    "1": {"importance": 0.9, "payload": {"rank": 1, "status": "open", "pinned": True}},
    "2": {"importance": 0.2, "payload": {"rank": 2.5, "status": "done"}},
    "3": {"importance": 0.5, "payload": {"rank": "3", "status": "dropped", "pinned": False}},
    "4": {"importance": 0.7, "payload": {"rank": 4, "pinned": 1}},
    "5": {"importance": 0.0, "payload": {"status": None}, "memory_type": "semantic"},
}


@pytest.fixture
def stored(client: TestClient, headers: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The memories, written in order; each one's own record as the service answers it."""
    records = {}
    for coord, spec in MEMORIES.items():
        body = {
            "coord": coord,
            "payload": {"text": f"note number {coord}", **spec["payload"]},
            "importance": spec["importance"],
            "memory_type": spec.get("memory_type", "episodic"),
        }
        assert client.post("/memories", json=body, headers=headers).status_code == 200
        records[coord] = client.get(f"/memories/{coord}", headers=headers).json()["memory"]
    return records


def _admitted(client: TestClient, headers: dict[str, str], filters: dict[str, Any]) -> set[str]:
    """The memories a filter admits, the same in every mode (else the test fails)."""
    found = {}
    for mode in MODES:
        body = {"query": "note", "top_k": 20, "filters": filters, "mode": mode}
        response = client.post("/memories/search", json=body, headers=headers)
        assert response.status_code == 200, response.text
        found[mode] = {hit["coord"].split(".")[0] for hit in response.json()["memories"]}
    assert found["vector"] == found["keyword"] == found["hybrid"], found
    return found["vector"]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"importance": {"$gte": 0.5}}, {"1", "3", "4"}),
        ({"importance": {"$gt": 0.2, "$lt": 0.9}}, {"3", "4"}),
        # numbers compare as numbers; the string "3" is not a number, so no range holds on it
        ({"rank": {"$gt": 2}}, {"2", "4"}),
        ({"rank": {"$lte": 2.5}}, {"1", "2"}),
        ({"rank": {"$in": [1, "3"]}}, {"1", "3"}),
        ({"pinned": True}, {"1"}),
        ({"pinned": {"$ne": True}}, {"2", "3", "4", "5"}),  # missing, false and 1 are not true
        ({"status": {"$nin": ["done", "dropped"]}}, {"1", "4", "5"}),  # null counts as missing
        ({"status": {"$exists": True}}, {"1", "2", "3"}),
        ({"status": {"$exists": False}}, {"4", "5"}),
        ({"rank": {"$not": {"$gt": 2}}}, {"1", "3", "5"}),  # complement: "3" and missing too
        ({"$or": [{"importance": {"$gte": 0.9}}, {"status": "done"}]}, {"1", "2"}),
        (
            {"$and": [{"rank": {"$exists": True}}, {"$not": {"memory_type": "semantic"}}]},
            {
                "1",
                "2",
                "3",
                "4",
            },
        ),
        ({"$not": {"$or": [{"pinned": True}, {"pinned": False}]}}, {"2", "4", "5"}),
        ({"memory_type": {"$ne": "episodic"}}, {"5"}),
        ({"version": 1, "memory_type": {"$in": ["episodic"]}}, {"1", "2", "3", "4"}),
    ],
)
def test_operators_select_the_same_memories_in_every_mode(
    client: TestClient,
    headers: dict[str, str],
    stored: dict[str, dict[str, Any]],
    filters: dict[str, Any],
    expected: set[str],
) -> None:
    assert _admitted(client, headers, filters) == expected


def test_times_compare_as_times_whatever_their_offset(
    client: TestClient, headers: dict[str, str], stored: dict[str, dict[str, Any]]
) -> None:
    third = stored["3"]["created_at"]
    assert _admitted(client, headers, {"created_at": {"$gte": third}}) == {"3", "4", "5"}
    assert _admitted(client, headers, {"created_at": {"$lt": third}}) == {"1", "2"}
    assert _admitted(client, headers, {"updated_at": {"$eq": third}}) == {"3"}
    far_east = "2000-01-01T09:00:00+09:00"  # midnight UTC: every memory came later
    assert _admitted(client, headers, {"created_at": {"$gt": far_east}}) == set(MEMORIES)


def test_version_counts_writes(
    client: TestClient, headers: dict[str, str], stored: dict[str, dict[str, Any]]
) -> None:
    body = {"coord": "2", "payload": {"text": "note number 2 again", "rank": 2.5}}
    assert client.post("/memories", json=body, headers=headers).status_code == 200
    assert _admitted(client, headers, {"version": {"$gt": 1}}) == {"2"}


def _refusal(client: TestClient, headers: dict[str, str], filters: Any) -> str:
    raw = json.dumps({"query": "note", "filters": filters})
    response = client.post(
        "/memories/search", content=raw, headers={**headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_input"
    return str(response.json()["detail"])


def _nested_not(depth: int) -> dict[str, Any]:
    filters: dict[str, Any] = {"k": 1}
    for _ in range(depth):
        filters = {"$not": filters}
    return filters


@pytest.mark.parametrize(
    ("filters", "path", "reason"),
    [
        ({"$and": [{"k": 1}, {"importance": {"$gt": True}}]}, "filters.$and[1].importance.$gt", ""),
        ({"k": {"$regex": "a.*"}}, "filters.k.$regex", "unknown operator"),
        ({"$nor": [{"k": 1}]}, "filters.$nor", "unknown operator"),
        ({"k": {"$gt": False}}, "filters.k.$gt", "booleans have no order"),
        ({"importance": "high"}, "filters.importance", "number"),
        ({"version": {"$in": [1, "2"]}}, "filters.version.$in[1]", "number"),
        ({"created_at": {"$gt": "yesterday"}}, "filters.created_at.$gt", "ISO 8601"),
        ({"updated_at": {"$lt": 1700000000}}, "filters.updated_at.$lt", "ISO 8601"),
        ({"memory_type": {"$exists": True}}, "filters.memory_type.$exists", "always exists"),
        ({"memory_type": {"$gt": "a"}}, "filters.memory_type.$gt", "no order"),
        ({"memory_type": {"$eq": "procedural"}}, "filters.memory_type.$eq", "not one of"),
        ({"k": {"$exists": "yes"}}, "filters.k.$exists", "true or false"),
        ({"k": {"$in": []}}, "filters.k.$in", "1 to 100"),
        ({"k": {"$in": 3}}, "filters.k.$in", "1 to 100"),
        ({"$or": []}, "filters.$or", "list of 1 to 32"),
        ({"$or": [{"k": 1}, {}]}, "filters.$or[1]", "non-empty filter object"),
        ({"$not": [{"k": 1}]}, "filters.$not", "filter object"),
        ({"k": {}}, "filters.k", "at least one operator"),
        ({"k": {"$eq": None}}, "filters.k.$eq", "strings, numbers, booleans"),
        ({"k": {"$eq": {"a": 1}}}, "filters.k.$eq", "strings, numbers, booleans"),
        ({"$or": [{"k": {"$ne": "a\tb"}}]}, "filters.$or[0].k.$ne", "control"),
        ({"k": {"$lt": 2**60}}, "filters.k.$lt", "2**53"),
        ({"$and": [{"k\n": 1}]}, "filters.$and[0]", "printable"),
        (_nested_not(9), "filters.$not.$not", "at most 8 levels"),
        (
            {"$or": [{"$and": [{"k": {"$gt": 1, "$lt": 2}}] * 32}] * 2},
            "filters.$or[1]",
            "at most 128",
        ),
        (
            {"k": {"$in": list(range(100))}, "j": {"$nin": list(range(100))}, "m": list(range(57))},
            ("filters.m"),
            "256",
        ),
    ],
)
def test_a_bad_filter_is_400_naming_the_offending_part(
    client: TestClient, headers: dict[str, str], filters: Any, path: str, reason: str
) -> None:
    detail = _refusal(client, headers, filters)
    assert detail.startswith(path), detail
    assert reason in detail


def test_a_filter_nested_within_bounds_is_answered(
    client: TestClient, headers: dict[str, str], stored: dict[str, dict[str, Any]]
) -> None:
    assert _admitted(client, headers, _nested_not(7)) == set(MEMORIES)  # 7 nots: k is missing


@pytest.mark.parametrize("hostile", ['x" or namespace != "', "x') or (1=1", '\\" or 1==1 or \\"'])
def test_hostile_names_and_values_inside_operators_stay_literal(
    client: TestClient, headers: dict[str, str], stored: dict[str, dict[str, Any]], hostile: str
) -> None:
    body = {"coord": "9", "payload": {"text": "note nine", "topic": hostile, hostile: "v"}}
    assert client.post("/memories", json=body, headers=headers).status_code == 200
    assert _admitted(client, headers, {"topic": {"$gte": hostile, "$lte": hostile}}) == {"9"}
    assert _admitted(client, headers, {"topic": {"$ne": hostile}}) == set(MEMORIES)
    assert _admitted(client, headers, {hostile: {"$exists": True}}) == {"9"}
    assert _admitted(client, headers, {"$not": {hostile: {"$in": ["v"]}}}) == set(MEMORIES)
