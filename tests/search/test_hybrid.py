"""Search modes over HTTP: keyword recall in PostgreSQL, hybrid fusion with the vector list.

On the session's real services: PostgreSQL, Redis, milvus-lite and the bundled local model.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from somamemory.app import create_app
from somamemory.settings import Settings

from ..conftest import TOKEN, free_port


def _store(client: TestClient, headers: dict[str, str], coord: str, text: str, **extra) -> None:
    payload = {"text": text, **extra.pop("payload", {})}
    response = client.post(
        "/memories", json={"coord": coord, "payload": payload, **extra}, headers=headers
    )
    assert response.status_code == 200, response.text


def _search(client: TestClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    response = client.post("/memories/search", json=body, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


# Incidents worded alike: only the code tells them apart, which an embedding barely sees.
INCIDENTS = {
    "1": "Error E4711 in the payments service was fixed by a retry with backoff.",
    "2": "Error E4712 in the payments service was fixed by a retry with backoff.",
    "3": "Error E1147 in the payments service was fixed by raising the pool size.",
    "4": "Error E7411 in the billing service was fixed by a retry with backoff.",
    "5": "TICKET-8812: login fails on Safari (auth).",
    "6": "TICKET-8821: login fails on Firefox (auth).",
    "7": "TICKET-2888: the export button does nothing (reporting).",
    "8": "Zofia Wiśniewska from the payments team reported that totals are off by one cent.",
    "9": "Amara Okonkwo from the payments team reported that totals are off by one cent.",
}
# Paraphrase targets, and neighbours that share one common word with the questions.
EVERYDAY = {
    "20": "Our dog Biscuit loves running on the beach.",
    "21": "Quarterly tax returns are due at the end of April.",
    "22": "The deployment failed because the database migration timed out.",
    "23": "The family enjoys board games on Sunday evenings.",
    "24": "Spring cleaning of the garage is planned for May.",
    "25": "The upgrade of the office coffee machine took two weeks.",
}


@pytest.fixture(scope="module")
def corpus(client: TestClient) -> dict[str, str]:
    """Headers of a namespace holding INCIDENTS and EVERYDAY (written once: tests only read)."""
    headers = {"Authorization": f"Bearer {TOKEN}", "X-Soma-Namespace": f"t-{uuid.uuid4().hex[:12]}"}
    for coord, text in {**INCIDENTS, **EVERYDAY}.items():
        _store(client, headers, coord, text)
    return headers


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("E4711", "1.0"),
        ("how was error E4711 fixed?", "1.0"),
        ("TICKET-8812", "5.0"),
        ("what is TICKET-8812 about?", "5.0"),
        ("what did Zofia Wiśniewska report?", "8.0"),
    ],
)
def test_an_exact_rare_token_finds_its_memory_first_in_hybrid_mode(
    client: TestClient, corpus: dict[str, str], query: str, expected: str
) -> None:
    answer = _search(client, corpus, query=query, mode="hybrid", top_k=5)
    assert answer["mode"] == "hybrid"
    first = answer["memories"][0]
    assert first["coord"] == expected
    assert first["ranks"]["keyword"] == 1
    assert [h["score"] for h in answer["memories"]] == sorted(
        (h["score"] for h in answer["memories"]), reverse=True
    )


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("where does the family puppy enjoy sprinting?", "20.0"),
        ("when must we file with the revenue office each spring?", "21.0"),
        ("why did the release break? schema upgrade took too long", "22.0"),
    ],
)
def test_a_paraphrase_with_no_shared_word_finds_its_memory_first_in_hybrid_mode(
    client: TestClient, corpus: dict[str, str], query: str, expected: str
) -> None:
    """Neighbours share a word with the question (family, spring, upgrade); the memory that
    answers it shares none, and still comes first."""
    keyword = _search(client, corpus, query=query, mode="keyword", top_k=10)["memories"]
    assert expected not in {h["coord"] for h in keyword} and keyword  # no word in common
    first = _search(client, corpus, query=query, top_k=5)["memories"][0]  # hybrid by default
    assert first["coord"] == expected
    assert first["ranks"] == {"vector": 1, "keyword": None}


def test_every_hit_carries_its_score_and_its_rank_in_each_list(
    client: TestClient, corpus: dict[str, str]
) -> None:
    hybrid = _search(client, corpus, query="error E4711 payments", top_k=9)["memories"]
    assert hybrid[0]["ranks"] == {"vector": hybrid[0]["ranks"]["vector"], "keyword": 1}
    assert all(set(h["ranks"]) == {"vector", "keyword"} for h in hybrid)
    assert all(h["ranks"]["vector"] or h["ranks"]["keyword"] for h in hybrid)
    for hit in hybrid:  # the fused score: weighted reciprocal ranks (vector 1, keyword <= 2)
        vector, keyword = hit["ranks"]["vector"], hit["ranks"]["keyword"]
        bound = (1 / (60 + vector) if vector else 0) + (2 / (60 + keyword) if keyword else 0)
        assert 0 < hit["score"] <= bound + 1e-9
        assert set(hit) >= {"coord", "payload", "memory_type", "importance", "version", "score"}
    vector = _search(client, corpus, query="error E4711", mode="vector", top_k=3)
    assert vector["mode"] == "vector"
    assert [h["ranks"] for h in vector["memories"]] == [
        {"vector": rank, "keyword": None} for rank in (1, 2, 3)
    ]
    assert all(-1 <= h["score"] <= 1.0001 for h in vector["memories"])  # cosine, as before
    keyword = _search(client, corpus, query="E4711", mode="keyword", top_k=3)
    assert [(h["coord"], h["ranks"]) for h in keyword["memories"]] == [
        ("1.0", {"vector": None, "keyword": 1})
    ]


def test_keyword_search_reads_every_string_of_the_payload(
    client: TestClient, headers: dict[str, str]
) -> None:
    _store(client, headers, "1", "plain", payload={"meta": {"tags": ["zebra-crossing", 7]}})
    _store(client, headers, "2", "plain", payload={"note": "Deployments of sweden-7.prod.internal"})
    _store(client, headers, "3", "plain", payload={"count": 4711, "flag": True})
    found = {
        query: [
            h["coord"] for h in _search(client, headers, query=query, mode="keyword")["memories"]
        ]
        for query in ("zebra", "deployment", "sweden-7.prod.internal", "4711")
    }
    assert found == {
        "zebra": ["1.0"],  # nested objects and arrays too
        "deployment": ["2.0"],  # stemmed: deployments -> deploy
        "sweden-7.prod.internal": ["2.0"],  # a host name is one token
        "4711": [],  # numbers are not text: only string values are indexed
    }


def test_keyword_results_stay_in_their_namespace(
    client: TestClient, headers: dict[str, str]
) -> None:
    other = {**headers, "X-Soma-Namespace": headers["X-Soma-Namespace"] + "-other"}
    _store(client, headers, "1", "error E4711 here")
    _store(client, other, "2", "error E4711 there")
    for mode in ("keyword", "hybrid"):
        mine = _search(client, headers, query="E4711", mode=mode)["memories"]
        theirs = _search(client, other, query="E4711", mode=mode)["memories"]
        assert [h["coord"] for h in mine] == ["1.0"]
        assert [h["coord"] for h in theirs] == ["2.0"]


@pytest.mark.parametrize(
    ("filters", "memory_type", "expected"),
    [
        ({"topic": "t2"}, None, {"2.0"}),
        ({"topic": ["t1", "t4"]}, None, {"1.0", "4.0"}),
        ({"rank": 3}, None, {"3.0"}),
        ({"rank": 3.0}, None, {"3.0"}),
        ({"pinned": True}, None, {"3.0"}),
        ({"pinned": 1}, None, set()),
        ({"memory_type": "semantic"}, None, {"1.0", "3.0"}),
        ({}, ["episodic"], {"2.0", "4.0"}),
        ({"topic": ["t1", "t2"]}, "semantic", {"1.0"}),
        ({"memory_type": "semantic"}, "episodic", set()),
        ({"topic": "nope"}, None, set()),
        ({"topic": 't1" OR 1=1 --'}, None, set()),
        ({"x') OR true OR ('": "v"}, None, set()),
    ],
)
def test_keyword_search_honours_filters(
    client: TestClient,
    headers: dict[str, str],
    filters: dict[str, Any],
    memory_type: object,
    expected: set[str],
) -> None:
    for n in range(1, 5):
        _store(
            client,
            headers,
            str(n),
            f"incident report number {n}",
            memory_type="semantic" if n in (1, 3) else "episodic",
            payload={"topic": f"t{n}", "rank": n, "pinned": n == 3},
        )
    for mode in ("keyword", "hybrid"):
        hits = _search(
            client, headers, query="incident", mode=mode, filters=filters, memory_type=memory_type
        )["memories"]
        assert {h["coord"] for h in hits} == expected, mode


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"query": "tea", "mode": "fuzzy"}, "mode must be one of vector, keyword, hybrid"),
        ({"query": "tea", "mode": "VECTOR"}, "mode must be one of"),
        ({"query": "tea", "mode": ""}, "mode must be one of"),
        ({"vector": [0.1] * 384, "mode": "keyword"}, "needs a non-empty 'query' text"),
        ({"query": "   ", "mode": "hybrid"}, "non-empty 'query' text"),
    ],
)
def test_a_bad_mode_answers_400_in_the_one_error_shape(
    client: TestClient, headers: dict[str, str], body: dict[str, Any], needle: str
) -> None:
    response = client.post("/memories/search", json=body, headers=headers)
    assert response.status_code == 400, response.text
    error = response.json()
    assert error["code"] == "invalid_input" and needle in error["detail"]
    assert set(error) == {"status", "title", "code", "detail"}
    by_url = client.get("/memories/search", params={"query": "tea", "mode": "x"}, headers=headers)
    assert by_url.status_code == 400 and "mode must be one of" in by_url.json()["detail"]


def test_without_postgresql_keyword_search_is_503_and_hybrid_answers_by_vector(
    make_settings: Callable[..., Settings], headers: dict[str, str], own_redis_prefix: str
) -> None:
    """Redis-only mode (PostgreSQL down) keeps vector search; keyword search says why it cannot."""
    settings = make_settings(
        postgres_url=f"postgresql://postgres@127.0.0.1:{free_port()}/none",
        redis_key_prefix=own_redis_prefix,
    )
    with TestClient(create_app(settings)) as client:
        _store(client, headers, "1", "error E4711 in the payments service")
        keyword = client.post(
            "/memories/search", json={"query": "E4711", "mode": "keyword"}, headers=headers
        )
        assert keyword.status_code == 503
        assert "keyword search runs in PostgreSQL" in keyword.json()["detail"]
        assert "redis-only" in keyword.json()["detail"]
        for mode in ("hybrid", None):
            answer = _search(client, headers, query="E4711", mode=mode)
            assert answer["mode"] == "vector"
            assert [h["coord"] for h in answer["memories"]] == ["1.0"]


@pytest.mark.parametrize(
    "query",
    [
        "E4711 & !(x | y):* <-> 'quoted' \\\\ back\\\\slash",
        "\u0000E4711\u0000",
        "E4711 " + " ".join(f"w{i}" for i in range(1000)),
        "'''",
        "-",
    ],
    ids=["operators", "nul", "1000-words", "quotes", "dash"],
)
def test_any_query_text_is_searched_as_words_never_as_syntax(
    client: TestClient, corpus: dict[str, str], query: str
) -> None:
    """tsquery operators, quotes, NUL, a thousand words: no error (MAX_TERMS are looked up)."""
    response = client.post(
        "/memories/search", json={"query": query, "mode": "keyword"}, headers=corpus
    )
    assert response.status_code == 200, response.text
    coords = [hit["coord"] for hit in response.json()["memories"]]
    assert coords[:1] == (["1.0"] if "E4711" in query else [])
