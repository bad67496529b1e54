"""One vector-store contract, run on milvus-lite embedded and on a milvus-lite server over http."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from somamemory.embeddings import HashEmbedder
from somamemory.errors import StartupError
from somamemory.filters import build_filter
from somamemory.models import Memory
from somamemory.stores.milvus import MilvusVectorStore

from ..milvus_server import MilvusLiteServer

DIM = 32
embedder = HashEmbedder(DIM)


def _memory(namespace: str, coord: str, memory_type: str = "episodic", **payload: object) -> Memory:
    now = datetime.now(UTC)
    return Memory(namespace, coord, memory_type, dict(payload), 0.0, 1, now, now)  # type: ignore[arg-type]


@pytest.fixture(params=["lite", "server"])
def store(
    request: pytest.FixtureRequest, tmp_path: Path, milvus_server: MilvusLiteServer
) -> Iterator[MilvusVectorStore]:
    uri = str(tmp_path / "v.db") if request.param == "lite" else milvus_server.uri
    collection = f"contract_{uuid.uuid4().hex[:8]}"
    opened = MilvusVectorStore.connect(uri, collection=collection, dim=DIM, token=None, timeout=5)
    assert opened.is_lite is (request.param == "lite")
    yield opened
    opened._client.drop_collection(collection)
    asyncio.run(opened.close())


async def _put(store: MilvusVectorStore, *memories: Memory) -> None:
    texts = [str(m.payload.get("text", "")) for m in memories]
    vectors = await embedder.embed(texts)
    await store.upsert(list(zip(memories, vectors, strict=True)))


async def _search(store: MilvusVectorStore, ns: str, text: str, k: int = 10, **filters: object):
    expression = build_filter(ns, dict(filters))
    assert expression is not None
    vector = (await embedder.embed([text]))[0]
    return await store.search(vector, top_k=k, expression=expression)


async def test_search_finds_the_nearest_first_within_the_namespace(
    store: MilvusVectorStore,
) -> None:
    await _put(
        store,
        _memory("a", "1.0", text="green tea with jasmine"),
        _memory("a", "2.0", text="quarterly tax filing deadline"),
        _memory("b", "1.0", text="green tea with jasmine"),
    )
    hits = await _search(store, "a", "green tea with jasmine")
    assert [coord for coord, _ in hits] == ["1.0", "2.0"]
    assert hits[0][1] == pytest.approx(1.0, abs=1e-4) and hits[1][1] < 0.5
    assert await store.count("a") == 2 and await store.count("b") == 1


async def test_upsert_replaces_and_delete_removes(store: MilvusVectorStore) -> None:
    await _put(store, _memory("a", "1.0", text="old words"))
    await _put(store, _memory("a", "1.0", text="entirely new sentence"))
    assert await store.count("a") == 1
    hits = await _search(store, "a", "entirely new sentence", k=1)
    assert hits[0][1] == pytest.approx(1.0, abs=1e-4)
    await store.delete("a", ["1.0"])
    assert await store.count("a") == 0
    assert await store.get_vector("a", "1.0") is None
    assert await _search(store, "a", "entirely new sentence") == []


async def test_filters_run_inside_milvus_and_top_k_is_filled(store: MilvusVectorStore) -> None:
    memories = [
        _memory(
            "a",
            f"{i}.0",
            "semantic" if i % 2 else "episodic",
            text=f"note {i}",
            topic="tea" if i % 3 == 0 else "tax",
            n=i,
        )
        for i in range(30)
    ]
    await _put(store, *memories)
    hits = await _search(store, "a", "note", k=5, topic="tea")
    assert len(hits) == 5  # 10 match; top_k of them come back, not fewer
    assert all(int(float(coord)) % 3 == 0 for coord, _ in hits)
    both = await _search(store, "a", "note", k=30, topic="tea", memory_type="semantic")
    assert sorted(int(float(c)) for c, _ in both) == [3, 9, 15, 21, 27]
    listed = await _search(store, "a", "note", k=30, n=[1, 2, 28])
    assert sorted(int(float(c)) for c, _ in listed) == [1, 2, 28]


async def test_a_collection_of_another_dimension_is_a_startup_error(
    store: MilvusVectorStore,
) -> None:
    other = MilvusVectorStore(store._client, collection=store._collection, dim=DIM * 2)
    with pytest.raises(StartupError, match=f"holds {DIM}-dim vectors"):
        other._ensure_collection()
