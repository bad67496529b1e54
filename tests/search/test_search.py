"""Recall by meaning over HTTP, on PostgreSQL + Redis + milvus-lite."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from ..conftest import DIM


def _store(client: TestClient, headers: dict[str, str], coord: str, text: str, **extra) -> None:
    body = {"coord": coord, "payload": {"text": text, **extra.pop("payload", {})}, **extra}
    response = client.post("/memories", json=body, headers=headers)
    assert response.status_code == 200, response.text


def _search(client: TestClient, headers: dict[str, str], **body) -> list[dict]:
    response = client.post("/memories/search", json=body, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["memories"]


TEXTS = {
    "1": "the user prefers green tea in the morning",
    "2": "the quarterly tax filing deadline is in april",
    "3": "our dog is called biscuit and loves the beach",
    "4": "the deployment pipeline failed on the staging cluster",
}


@pytest.fixture
def stored(client: TestClient, headers: dict[str, str]) -> dict[str, str]:
    for coord, text in TEXTS.items():
        _store(
            client,
            headers,
            coord,
            text,
            memory_type="semantic" if coord in "13" else "episodic",
            payload={"topic": f"t{coord}", "rank": int(coord), "pinned": coord == "3"},
        )
    return TEXTS


def test_an_exact_text_finds_its_memory_first(
    client: TestClient, headers: dict[str, str], stored: dict[str, str]
) -> None:
    for coord, text in stored.items():
        hits = _search(client, headers, query=text, top_k=4)
        assert hits[0]["coord"] == f"{coord}.0"
        assert hits[0]["payload"]["text"] == text
        assert hits[0]["similarity"] == pytest.approx(1.0, abs=1e-3)  # cosine, in every mode
        assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
        assert set(hits[0]) >= {"coord", "payload", "memory_type", "importance", "score"}
        vector = _search(client, headers, query=text, top_k=4, mode="vector")
        assert vector[0]["coord"] == f"{coord}.0"
        assert vector[0]["score"] == pytest.approx(1.0, abs=1e-3)  # vector mode: the cosine


def test_shared_words_rank_above_unrelated_text(
    client: TestClient, headers: dict[str, str], stored: dict[str, str]
) -> None:
    hits = _search(client, headers, query="does the user like tea in the morning?", top_k=4)
    assert hits[0]["coord"] == "1.0"


def test_the_get_form_answers_the_same(
    client: TestClient, headers: dict[str, str], stored: dict[str, str]
) -> None:
    response = client.get(
        "/memories/search",
        params={"query": stored["2"], "top_k": 2, "memory_type": "episodic"},
        headers=headers,
    )
    hits = response.json()["memories"]
    assert hits[0]["coord"] == "2.0"
    assert all(h["memory_type"] == "episodic" for h in hits)


@pytest.mark.parametrize(
    ("filters", "memory_type", "expected"),
    [
        ({"topic": "t2"}, None, {"2.0"}),
        ({"topic": ["t1", "t4"]}, None, {"1.0", "4.0"}),
        ({"rank": 3}, None, {"3.0"}),
        ({"pinned": True}, None, {"3.0"}),
        ({"memory_type": "semantic"}, None, {"1.0", "3.0"}),
        ({}, ["episodic"], {"2.0", "4.0"}),
        ({"topic": ["t1", "t2"]}, "semantic", {"1.0"}),
        ({"memory_type": "semantic"}, "episodic", set()),
        ({"topic": "nope"}, None, set()),
    ],
)
def test_filters_narrow_the_results(
    client: TestClient,
    headers: dict[str, str],
    stored: dict[str, str],
    filters: dict,
    memory_type: object,
    expected: set[str],
) -> None:
    hits = _search(
        client, headers, query="anything", top_k=10, filters=filters, memory_type=memory_type
    )
    assert {h["coord"] for h in hits} == expected


FLAGS = {"10": True, "11": 1, "12": 1.0, "13": "true", "14": False, "15": 0, "16": None}


@pytest.mark.parametrize(
    ("wanted", "expected"),
    [
        (True, {"10"}),
        (False, {"14"}),
        (1, {"11", "12"}),
        (0, {"15"}),
        ("true", {"13"}),
        ([True, 0], {"10", "15"}),
        ([1, False], {"11", "12", "14"}),
    ],
)
def test_a_filter_tells_booleans_from_numbers(
    client: TestClient, headers: dict[str, str], wanted: object, expected: set[str]
) -> None:
    """``true`` matches the boolean alone, never the number 1 (nor 1 the boolean)."""
    for coord, flag in FLAGS.items():
        _store(client, headers, coord, f"flag {flag!r}", payload={"flag": flag})
    hits = _search(client, headers, query="flag", top_k=20, filters={"flag": wanted})
    assert {h["coord"].split(".")[0] for h in hits} == expected


@pytest.mark.parametrize(
    "hostile",
    [
        'x" or namespace != "',
        "x\\",
        'a"]',
        't1" || true || "',
        "x') or (1==1",
        "] or [",
        '\\" or 1==1 or \\"',
    ],
)
def test_filters_cannot_change_the_expression(
    client: TestClient, headers: dict[str, str], stored: dict[str, str], hostile: str
) -> None:
    _store(client, headers, "99", "hostile value", payload={"topic": hostile, hostile: "v"})
    by_value = _search(client, headers, query="x", filters={"topic": hostile})
    assert [h["coord"] for h in by_value] == ["99.0"]
    by_name = _search(client, headers, query="x", filters={hostile: "v"})
    assert [h["coord"] for h in by_name] == ["99.0"]
    nothing = _search(client, headers, query="x", filters={hostile: "other"})
    assert nothing == []


def test_top_k_comes_back_full_when_enough_match(
    client: TestClient, headers: dict[str, str]
) -> None:
    for i in range(40):
        _store(client, headers, str(i), f"memory {i}", payload={"even": i % 2 == 0})
    hits = _search(client, headers, query="memory", top_k=15, filters={"even": True})
    assert len(hits) == 15 and all(h["payload"]["even"] for h in hits)
    assert len(_search(client, headers, query="memory", top_k=30, filters={"even": True})) == 20


def test_namespaces_never_see_each_others_memories(
    client: TestClient, headers: dict[str, str], stored: dict[str, str]
) -> None:
    other = {**headers, "X-Soma-Namespace": headers["X-Soma-Namespace"] + "-b"}
    assert _search(client, other, query=stored["1"], top_k=10) == []


def test_deleted_memories_never_come_back(
    client: TestClient, headers: dict[str, str], stored: dict[str, str]
) -> None:
    client.delete("/memories/1", headers=headers)
    hits = _search(client, headers, query=stored["1"], top_k=10)
    assert "1.0" not in {h["coord"] for h in hits}


def test_upserted_memories_are_found_by_their_new_text(
    client: TestClient, headers: dict[str, str], stored: dict[str, str]
) -> None:
    _store(client, headers, "1", "a recipe for sourdough bread with rye")
    new = _search(client, headers, query="a recipe for sourdough bread with rye", top_k=1)
    assert new[0]["coord"] == "1.0" and new[0]["version"] == 2
    old = _search(client, headers, query=stored["1"], top_k=4)
    for hit in (h for h in old if h["coord"] == "1.0"):  # the old text no longer matches it
        assert hit["payload"]["text"] == "a recipe for sourdough bread with rye"
        assert hit["similarity"] is None or hit["similarity"] < 0.5


def test_search_by_own_vector(client: TestClient, headers: dict[str, str]) -> None:
    _store(client, headers, "5", "x", vector=[0.0] * (DIM - 1) + [1.0])
    _store(client, headers, "6", "y", vector=[1.0] + [0.0] * (DIM - 1))
    hits = _search(client, headers, vector=[0.1] + [0.0] * (DIM - 2) + [1.0], top_k=1)
    assert hits[0]["coord"] == "5.0"


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        ({"query": "x", "top_k": 0}, 422, ""),
        ({"query": "x", "top_k": 101}, 400, "SOMA_MAX_TOP_K"),
        ({"top_k": 5}, 400, "query"),
        ({"query": "   "}, 400, "query"),
        ({"vector": [1.0, 2.0]}, 400, "dimensions"),
        ({"query": "x", "filters": {"k": None}}, 422, ""),
        ({"query": "x", "filters": {"k": {"nested": 1}}}, 400, "filters.k.nested"),
        ({"query": "x", "filters": {"k": []}}, 400, "list"),
        ({"query": "x", "filters": {"": "v"}}, 400, "field names"),
        ({"query": "x", "filters": {"k": "a\nb"}}, 400, "control"),
        ({"query": "x", "filters": {"memory_type": "procedural"}}, 400, "memory_type"),
        ({"query": "x", "filters": {"k": 2**60}}, 400, "2**53"),
        ({"query": "x", "filters": {f"f{i}": list(range(100)) for i in range(3)}}, 400, "256"),
        ({"query": "x", "filters": {"k": "\ud800"}}, 400, "surrogate"),
        ({"query": "x", "filters": {"\udfff": "v"}}, 400, "field names"),
        ({"query": "x", "memory_type": "procedural"}, 422, ""),
    ],
)
def test_bad_searches_are_4xx_with_the_reason(
    client: TestClient, headers: dict[str, str], body: dict, status: int, reason: str
) -> None:
    raw = json.dumps(body)  # ASCII escapes, so a lone surrogate travels as a client sends it
    response = client.post(
        "/memories/search", content=raw, headers={**headers, "Content-Type": "application/json"}
    )
    assert response.status_code == status, response.text
    assert reason in response.text


@pytest.mark.parametrize("consistency", ["strong", "session", "bounded", "eventually", None])
def test_a_search_right_after_a_write_finds_it_at_every_consistency_level(
    client: TestClient, headers: dict[str, str], consistency: str | None
) -> None:
    """milvus-lite is one process: every level reads its own writes. (On a Milvus server only
    'strong' and this replica's 'session' promise it; the README says what each level sees.)"""
    _store(client, headers, "42", "a freshly written note about sailing boats")
    body = {"query": "sailing boats", "top_k": 1, "consistency": consistency}
    assert [h["coord"] for h in _search(client, headers, **body)] == ["42.0"]
    got = client.get(
        "/memories/search",
        params={
            "query": "sailing boats",
            "top_k": 1,
            **({"consistency": consistency} if consistency else {}),
        },
        headers=headers,
    )
    assert [h["coord"] for h in got.json()["memories"]] == ["42.0"]


def test_an_unknown_consistency_level_is_refused(
    client: TestClient, headers: dict[str, str]
) -> None:
    response = client.post(
        "/memories/search", json={"query": "x", "consistency": "linearizable"}, headers=headers
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "consistency"]
