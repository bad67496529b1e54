"""Walks over the graph: neighbourhoods and shortest paths, computed inside PostgreSQL and
reading only the links of the memories they expand, judged by the plan's row counts."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
from fastapi.testclient import TestClient

from somamemory.stores.postgres_graph import _NEIGHBORS, _PATH

from ..conftest import TOKEN

MEMORIES = 2000
FAN_OUT = 5  # memory i links to 5i+1 .. 5i+5 (mod 2000): 10,000 links, with cycles


def _graph_rows(namespace: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    memories = [(namespace, f"{i}.0") for i in range(MEMORIES)]  # canonical coordinates
    links = [
        (namespace, f"{i}.0", f"{(FAN_OUT * i + j) % MEMORIES}.0")
        for i in range(MEMORIES)
        for j in range(1, FAN_OUT + 1)
    ]
    return memories, links


async def _build(url: str, namespace: str) -> None:
    memories, links = _graph_rows(namespace)
    connection = await asyncpg.connect(url)
    try:
        await connection.executemany(
            "INSERT INTO memories (namespace, coord, memory_type, payload, importance, version,"
            " created_at, updated_at) VALUES ($1, $2, 'semantic', '{}', 0, 1, now(), now())",
            memories,
        )
        await connection.executemany(
            "INSERT INTO memory_links (namespace, from_coord, to_coord, link_type)"
            " VALUES ($1, $2, $3, 'related')",
            links,
        )
        await connection.execute("ANALYZE memory_links")
    finally:
        await connection.close()


@pytest.fixture(scope="module")
def big_graph(database_url: str) -> Iterator[dict[str, str]]:
    """10,000 links between 2,000 memories (written straight to PostgreSQL: the walks read
    links and memories only), in a namespace of their own."""
    namespace = f"graph-{uuid.uuid4().hex[:10]}"
    asyncio.run(_build(database_url, namespace))
    yield {"Authorization": f"Bearer {TOKEN}", "X-Soma-Namespace": namespace}


def _plan_nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from _plan_nodes(child)


def _link_scans(url: str, query: str, *args: object) -> tuple[int, int, set[str]]:
    """What the query's scans of ``memory_links`` did (EXPLAIN ANALYZE): rows returned, how
    many times they ran, and their kinds. EXPLAIN rounds rows to a per-run average, so the row
    count is exact to within one row per run."""

    async def run() -> Any:
        connection = await asyncpg.connect(url)
        try:
            return await connection.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {query}", *args)
        finally:
            await connection.close()

    plan = json.loads(asyncio.run(run()))[0]["Plan"]
    scans = [node for node in _plan_nodes(plan) if node.get("Relation Name") == "memory_links"]
    rows = sum(int(node["Actual Rows"]) * int(node["Actual Loops"]) for node in scans)
    runs = sum(int(node["Actual Loops"]) for node in scans)
    return rows, runs, {node["Node Type"] for node in scans if node["Actual Loops"]}


def test_a_depth_3_neighbourhood_of_a_10k_link_graph_reads_only_the_links_it_expands(
    client: TestClient, big_graph: dict[str, str], database_url: str
) -> None:
    params = {"coord": "0", "k_hop": 3, "limit": 1000}
    response = client.get("/graph/neighbors", params=params, headers=big_graph)
    assert response.status_code == 200, response.text
    found = response.json()["neighbors"]
    # 0 -> 1..5 -> 6..30 -> 31..155: each memory once, at its fewest hops
    assert Counter(n["hops"] for n in found) == {1: 5, 2: 25, 3: 125}
    assert {n["coord"] for n in found} == {f"{i}.0" for i in range(1, 156)}
    assert next(n for n in found if n["coord"] == "155.0")["via"] == "30.0"

    namespace = big_graph["X-Soma-Namespace"]
    rows, runs, scans = _link_scans(
        database_url, _NEIGHBORS, namespace, "0.0", None, "out", 3, 1000
    )
    # one index scan per level expanded (0-2), reading the links of those 31 memories: 155 of
    # the 10,000
    assert runs == 3 and scans == {"Index Scan"}
    assert abs(rows - 155) <= runs

    # the row limit stops the walk too: 10 places fill up at level 2, so level 2 is not expanded
    rows, runs, _ = _link_scans(database_url, _NEIGHBORS, namespace, "0.0", None, "out", 3, 10)
    assert runs == 2 and abs(rows - (FAN_OUT + FAN_OUT**2)) <= runs
    first_ten = client.get(
        "/graph/neighbors", params={"coord": "0", "k_hop": 3, "limit": 10}, headers=big_graph
    ).json()["neighbors"]
    assert [n["hops"] for n in first_ten] == [1] * 5 + [2] * 5


def test_the_shortest_path_in_the_10k_link_graph_stops_at_its_target(
    client: TestClient, big_graph: dict[str, str], database_url: str
) -> None:
    params = {"from_coord": "0", "to_coord": "155"}
    found = client.get("/graph/path", params=params, headers=big_graph).json()
    assert found["path"] == ["0.0", "5.0", "30.0", "155.0"]
    assert (found["found"], found["hops"], found["exhausted"]) == (True, 3, False)
    namespace = big_graph["X-Soma-Namespace"]
    rows, runs, scans = _link_scans(
        database_url, _PATH, namespace, "0.0", None, "out", 10, "155.0", 20_000
    )
    # levels 0-2 are expanded; level 3 holds the target, so the walk stops there
    assert runs == 3 and scans == {"Index Scan"} and abs(rows - 155) <= runs

    short = client.get("/graph/path", params={**params, "max_length": 2}, headers=big_graph).json()
    assert (short["found"], short["path"], short["hops"]) == (False, [], None)


def _store(client: TestClient, headers: dict[str, str], *coords: str) -> None:
    for coord in coords:
        body = {"coord": coord, "payload": {"text": f"memory {coord}"}}
        assert client.post("/memories", json=body, headers=headers).status_code == 200


def _link(client: TestClient, headers: dict[str, str], a: str, b: str, kind: str) -> None:
    body = {"from_coord": a, "to_coord": b, "link_type": kind}
    assert client.post("/graph/link", json=body, headers=headers).status_code == 200


def test_path_finds_the_shortest_of_several(client: TestClient, headers: dict[str, str]) -> None:
    _store(client, headers, "1", "2", "3", "4", "5", "6")
    for a, b in (("1", "2"), ("2", "3"), ("3", "4"), ("4", "5"), ("3", "1")):
        _link(client, headers, a, b, "next")
    _link(client, headers, "1", "6", "jump")
    _link(client, headers, "6", "5", "jump")

    def path(**params: object) -> dict:
        response = client.get(
            "/graph/path", params={"from_coord": "1", "to_coord": "5", **params}, headers=headers
        )
        assert response.status_code == 200, response.text
        return response.json()

    shortest = path()
    assert (shortest["path"], shortest["link_types"]) == (
        ["1.0", "6.0", "5.0"],
        ["jump", "jump"],
    )
    assert shortest["hops"] == 2
    along = path(link_type="next")
    assert along["path"] == ["1.0", "2.0", "3.0", "4.0", "5.0"] and along["hops"] == 4
    assert path(link_type="next", max_length=3)["found"] is False
    backwards = client.get(
        "/graph/path", params={"from_coord": "5", "to_coord": "1"}, headers=headers
    ).json()
    assert backwards["found"] is False  # links have a direction
    both = client.get(
        "/graph/path",
        params={"from_coord": "5", "to_coord": "1", "direction": "both"},
        headers=headers,
    ).json()
    assert both["path"] == ["5.0", "6.0", "1.0"]
    itself = client.get(
        "/graph/path", params={"from_coord": "2", "to_coord": "2"}, headers=headers
    ).json()
    assert (itself["path"], itself["hops"]) == (["2.0"], 0)
