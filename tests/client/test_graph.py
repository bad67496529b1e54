"""The graph through the sync and the async client, against the live server: link, walk,
find a path, expand a search, unlink, and the typed errors of bad and missing input."""

from __future__ import annotations

import pytest

from somamemory.client import (
    BadRequest,
    GraphPath,
    LinkResult,
    Neighbor,
    NotFound,
    UnlinkResult,
    Via,
)

from .adapters import Client

DIM = 384  # the server's default embedding dimension


def _axis(index: int) -> list[float]:
    vector = [0.0] * DIM
    vector[index] = 1.0
    return vector


async def test_links_are_made_walked_followed_by_search_and_removed(soma: Client) -> None:
    for n in (1, 2, 3):
        await soma.store(str(n), {"n": n}, vector=_axis(n))
    made = await soma.link("1", (2,), "causes", strength=2.0, metadata={"why": "test"})
    assert made == LinkResult("1.0", "2.0", "causes", ok=True, strength=2.0, created=True)
    await soma.link("2", "3", "follows")

    near = await soma.neighbors("1", k_hop=2)
    assert near.coord == "1.0"
    assert near.neighbors == [
        Neighbor("2.0", 1, "1.0", "causes", 2.0, {"why": "test"}),
        Neighbor("3.0", 2, "2.0", "follows", 1.0, {}),
    ]
    assert [n.coord for n in (await soma.neighbors("3", direction="in")).neighbors] == ["2.0"]

    found = await soma.path("1", "3", max_length=3)
    assert found == GraphPath(
        "1.0", "3.0", ["1.0", "2.0", "3.0"], ["causes", "follows"], True, hops=2
    )
    assert (await soma.path("3", "1")).found is False

    hits = await soma.search(vector=_axis(1), top_k=1, expand={"link_type": "causes"})
    assert [(hit.coord, hit.via) for hit in hits] == [
        ("1.0", None),
        ("2.0", Via("1.0", "causes", 2.0)),
    ]

    removed = await soma.unlink("1", "2")  # every type
    assert removed == UnlinkResult("1.0", "2.0", None, deleted=True, removed=1)
    assert (await soma.neighbors("1")).neighbors == []
    assert (await soma.unlink("1", "2", "causes")).deleted is False


async def test_missing_memories_and_bad_bounds_are_typed_errors(soma: Client) -> None:
    await soma.store("1", {"n": 1})
    with pytest.raises(NotFound) as missing:
        await soma.link("1", "2", "related")
    assert missing.value.status == 404 and "2.0" in missing.value.detail
    with pytest.raises(BadRequest) as too_deep:
        await soma.neighbors("1", k_hop=99)
    assert too_deep.value.status == 400 and "k_hop" in too_deep.value.detail
    with pytest.raises(BadRequest):
        await soma.link("1", "1", "no spaces allowed")
