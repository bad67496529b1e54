"""Links between memories over HTTP on the real backends: made, updated, removed, refused
across namespaces and beyond bounds, gone with their memory, and followed by search."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest
from fastapi.testclient import TestClient

from ..conftest import DIM, TOKEN


def _store(client: TestClient, headers: dict[str, str], coord: str, text: str = "a note") -> None:
    body = {"coord": coord, "payload": {"text": text}}
    response = client.post("/memories", json=body, headers=headers)
    assert response.status_code == 200, response.text


def _link(client: TestClient, headers: dict[str, str], a: str, b: str, **body: object) -> dict:
    response = client.post(
        "/graph/link", json={"from_coord": a, "to_coord": b, **body}, headers=headers
    )
    assert response.status_code == 200, response.text
    return response.json()


def _neighbors(client: TestClient, headers: dict[str, str], coord: str, **params: object) -> list:
    response = client.get("/graph/neighbors", params={"coord": coord, **params}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["neighbors"]


def _links_in_postgres(url: str, namespace: str) -> list[tuple[str, str]]:
    async def run() -> list[tuple[str, str]]:
        connection = await asyncpg.connect(url)
        try:
            rows = await connection.fetch(
                "SELECT from_coord, to_coord FROM memory_links WHERE namespace = $1 ORDER BY 1, 2",
                namespace,
            )
        finally:
            await connection.close()
        return [(row["from_coord"], row["to_coord"]) for row in rows]

    return asyncio.run(run())


def test_a_link_is_made_updated_read_and_removed(
    client: TestClient, headers: dict[str, str]
) -> None:
    for coord in ("1", "2", "3"):
        _store(client, headers, coord)
    made = _link(client, headers, "1", " 2.0", link_type="causes", strength=0.5)
    assert made["from_coord"] == "1.0" and made["to_coord"] == "2.0"
    assert (made["link_type"], made["ok"], made["created"]) == ("causes", True, True)
    assert _link(client, headers, "1", "3")["link_type"] == "related"  # the seed's default
    again = _link(client, headers, "1", "2", link_type="causes", strength=2, metadata={"why": 1})
    assert again["created"] is False and again["strength"] == 2.0

    assert _neighbors(client, headers, "1") == [
        {
            "coord": "2.0",
            "hops": 1,
            "via": "1.0",
            "link_type": "causes",
            "strength": 2.0,
            "metadata": {"why": 1},
        },
        {
            "coord": "3.0",
            "hops": 1,
            "via": "1.0",
            "link_type": "related",
            "strength": 1.0,
            "metadata": {},
        },
    ]
    assert _neighbors(client, headers, "2") == []  # links have a direction
    assert [n["coord"] for n in _neighbors(client, headers, "2", direction="in")] == ["1.0"]
    assert [n["coord"] for n in _neighbors(client, headers, "1", link_type="related")] == ["3.0"]

    params = {"from_coord": "1", "to_coord": "2", "link_type": "causes"}
    removed = client.delete("/graph/link", params=params, headers=headers)
    assert removed.status_code == 200, removed.text
    assert (removed.json()["deleted"], removed.json()["removed"]) == (True, 1)
    twice = client.delete("/graph/link", params=params, headers=headers).json()
    assert (twice["deleted"], twice["removed"]) == (False, 0)
    assert [n["coord"] for n in _neighbors(client, headers, "1")] == ["3.0"]


def test_linking_a_missing_memory_answers_404_and_makes_nothing(
    client: TestClient, headers: dict[str, str], namespace: str, database_url: str
) -> None:
    _store(client, headers, "1")
    for a, b in (("1", "9"), ("9", "1")):
        response = client.post(
            "/graph/link", json={"from_coord": a, "to_coord": b}, headers=headers
        )
        assert response.status_code == 404
        assert response.json()["code"] == "memory_not_found"
        assert "9.0" in response.json()["detail"]
    missing = client.get("/graph/neighbors", params={"coord": "9"}, headers=headers)
    assert missing.status_code == 404
    path = client.get("/graph/path", params={"from_coord": "1", "to_coord": "9"}, headers=headers)
    assert path.status_code == 404
    assert _links_in_postgres(database_url, namespace) == []


def test_links_never_cross_namespaces(
    client: TestClient, headers: dict[str, str], namespace: str
) -> None:
    other = {**headers, "X-Soma-Namespace": f"other-{uuid.uuid4().hex[:8]}"}
    _store(client, headers, "1")
    _store(client, other, "2")
    _store(client, other, "1")
    refused = client.post("/graph/link", json={"from_coord": "1", "to_coord": "2"}, headers=headers)
    assert refused.status_code == 404  # "2" is a memory of the other namespace only
    _link(client, other, "1", "2")
    assert _neighbors(client, headers, "1") == []  # the other namespace's link is not ours
    assert [n["coord"] for n in _neighbors(client, other, "1")] == ["2.0"]


def test_a_token_needs_write_to_link_and_read_to_walk(
    client: TestClient, headers: dict[str, str], namespace: str
) -> None:
    for coord in ("1", "2"):
        _store(client, headers, coord)
    _link(client, headers, "1", "2")
    minted = client.post(
        "/admin/tokens",
        json={"namespaces": [namespace], "role": "read"},
        headers={"Authorization": f"Bearer {TOKEN}"},
    ).json()["token"]
    reader = {"Authorization": f"Bearer {minted}", "X-Soma-Namespace": namespace}
    assert [n["coord"] for n in _neighbors(client, reader, "1")] == ["2.0"]
    body = {"from_coord": "2", "to_coord": "1"}
    assert client.post("/graph/link", json=body, headers=reader).status_code == 403
    params = {"from_coord": "1", "to_coord": "2"}
    assert client.delete("/graph/link", params=params, headers=reader).status_code == 403
    elsewhere = {**reader, "X-Soma-Namespace": "somewhere-else"}
    assert (
        client.get("/graph/neighbors", params={"coord": "1"}, headers=elsewhere).status_code == 403
    )


@pytest.mark.parametrize(
    ("route", "params", "reason"),
    [
        ("/graph/neighbors", {"coord": "1", "k_hop": 0}, "k_hop must be between 1 and 4"),
        ("/graph/neighbors", {"coord": "1", "k_hop": 5}, "k_hop must be between 1 and 4"),
        ("/graph/neighbors", {"coord": "1", "limit": 1001}, "limit must be between 1 and 1000"),
        ("/graph/neighbors", {"coord": "1", "limit": 0}, "limit must be between 1 and 1000"),
        ("/graph/neighbors", {"coord": "1,x"}, "not a decimal number"),
        ("/graph/neighbors", {"coord": "1", "link_type": "a b"}, "link_type must be"),
        ("/graph/neighbors", {"coord": "1", "direction": "up"}, "direction must be"),
        (
            "/graph/path",
            {"from_coord": "1", "to_coord": "2", "max_length": 11},
            "max_length must be between 1 and 10",
        ),
        ("/graph/path", {"from_coord": "1", "to_coord": "nan"}, "not a decimal number"),
    ],
)
def test_walks_beyond_their_bounds_answer_400(
    client: TestClient, headers: dict[str, str], route: str, params: dict, reason: str
) -> None:
    response = client.get(route, params=params, headers=headers)
    assert response.status_code == 400, response.text
    assert reason in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"link_type": ""}, "link_type must be"),
        ({"link_type": "x" * 65}, "link_type must be"),
        ({"link_type": "a/b"}, "link_type must be"),
        ({"metadata": {"note": "x" * 17_000}}, "over 16384 bytes"),
        ({"metadata": {"note": "nul\u0000"}}, "NUL"),
        ({"to_coord": "1,,2"}, "empty"),
    ],
)
def test_bad_links_answer_400_and_make_nothing(
    client: TestClient,
    headers: dict[str, str],
    namespace: str,
    database_url: str,
    body: dict,
    reason: str,
) -> None:
    for coord in ("1", "2"):
        _store(client, headers, coord)
    sent = {"from_coord": "1", "to_coord": "2", **body}
    response = client.post("/graph/link", json=sent, headers=headers)
    assert response.status_code == 400, response.text
    assert reason in response.json()["detail"]
    assert _links_in_postgres(database_url, namespace) == []


def test_deleting_a_memory_removes_its_links_both_ways_and_keeps_the_others(
    client: TestClient, headers: dict[str, str], namespace: str, database_url: str
) -> None:
    for coord in ("1", "2", "3"):
        _store(client, headers, coord)
    _link(client, headers, "1", "2")
    _link(client, headers, "2", "3")
    _link(client, headers, "1", "3")
    assert client.delete("/memories/2", headers=headers).json()["deleted"] is True
    assert _links_in_postgres(database_url, namespace) == [("1.0", "3.0")]
    _store(client, headers, "2")  # a new memory at the same coordinate starts unlinked
    assert [n["coord"] for n in _neighbors(client, headers, "2", direction="both")] == []


def _axis(index: int, weight: float = 1.0) -> list[float]:
    vector = [0.0] * DIM
    vector[index] = weight
    return vector


def test_search_expands_its_hits_by_one_link(client: TestClient, headers: dict[str, str]) -> None:
    for n in range(1, 6):
        body = {"coord": str(n), "payload": {"n": n}, "vector": _axis(n)}
        assert client.post("/memories", json=body, headers=headers).status_code == 200
    _link(client, headers, "1", "3", link_type="about", strength=1)
    _link(client, headers, "1", "4", link_type="about", strength=3)
    _link(client, headers, "2", "3", link_type="about", strength=9)  # 3 is reached from 1 first
    _link(client, headers, "2", "1", link_type="about")  # to a hit: never repeated
    _link(client, headers, "1", "5", link_type="other")
    query = [a + b for a, b in zip(_axis(1), _axis(2, 0.5), strict=True)]  # hits: 1, then 2

    def search(**body: object) -> list[dict]:
        sent = {"vector": query, "top_k": 2, **body}
        response = client.post("/memories/search", json=sent, headers=headers)
        assert response.status_code == 200, response.text
        return response.json()["memories"]

    plain = search()
    assert [(m["coord"], m.get("via")) for m in plain] == [("1.0", None), ("2.0", None)]
    expanded = search(expand={"link_type": "about", "depth": 1})
    assert [(m["coord"], m.get("via")) for m in expanded] == [
        ("1.0", None),
        ("2.0", None),
        ("4.0", {"coord": "1.0", "link_type": "about", "strength": 3.0}),
        ("3.0", {"coord": "1.0", "link_type": "about", "strength": 1.0}),
    ]
    assert expanded[2]["payload"] == {"n": 4} and expanded[2]["score"] == plain[0]["score"]
    every_type = search(expand={})  # at most as many expansions as hits: the strongest
    assert [m["coord"] for m in every_type] == ["1.0", "2.0", "4.0", "3.0"]
    other = search(expand={"link_type": "other"})
    assert [m["coord"] for m in other] == ["1.0", "2.0", "5.0"]

    refused = client.post(
        "/memories/search", json={"vector": query, "expand": {"depth": 2}}, headers=headers
    )
    assert refused.status_code == 400 and "depth must be 1" in refused.json()["detail"]


def test_health_reports_the_graph_store(client: TestClient, headers: dict[str, str]) -> None:
    assert client.get("/health", headers=headers).json()["graph_store"] is True
