"""One vector-store contract, run on milvus-lite embedded and on a milvus-lite server over http."""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from somamemory.embeddings import HashEmbedder
from somamemory.errors import StartupError
from somamemory.filters import parse_filter
from somamemory.models import Memory
from somamemory.stores.milvus import MilvusVectorStore, milvus_string, vector_id

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


def _open_lite(tmp_path: Path, collection: str) -> MilvusVectorStore:
    """A store on milvus-lite embedded, in ``tmp_path``."""
    return MilvusVectorStore.connect(
        str(tmp_path / "v.db"), collection=collection, dim=DIM, token=None, timeout=5
    )


async def _put(store: MilvusVectorStore, *memories: Memory) -> None:
    texts = [str(m.payload.get("text", "")) for m in memories]
    vectors = await embedder.embed(texts)
    await store.upsert(list(zip(memories, vectors, strict=True)))


async def _search(store: MilvusVectorStore, ns: str, text: str, k: int = 10, **filters: object):
    where = parse_filter(ns, dict(filters))
    assert where is not None
    vector = (await embedder.embed([text]))[0]
    return await store.search(vector, top_k=k, where=where)


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


async def test_a_search_reads_each_write_made_just_before_it_in_its_namespace(
    store: MilvusVectorStore,
) -> None:
    """At the default (session) level, across namespaces written in turn: a server is asked to
    wait for this process' writes in the searched namespace only, and must still show them."""
    for i in range(8):
        for ns in ("a", "b"):
            text = f"note {i} of namespace {ns}: {uuid.uuid4().hex}"
            await _put(store, _memory(ns, f"{i}.0", text=text))
            hits = await _search(store, ns, text, k=1)
            assert [coord for coord, _ in hits] == [f"{i}.0"], (ns, i)
    # Deletes are not part of this: Milvus 2.3.5 answers a delete with no timestamp, so a session
    # search right after one may still see the vector (the service skips a vector whose memory
    # is gone, and counts read at strong).
    assert await _search(store, "c", "note 1 of namespace a") == []


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


async def test_typed_filters_and_vectors_written_before_the_times_were_kept(
    store: MilvusVectorStore,
) -> None:
    """Operators run on both Milvus paths; a row as the previous release wrote it (no times in
    ``fields``) has missing times until it is written again (README, "Filters")."""
    await _put(
        store,
        _memory("a", "1.0", text="one", rank=1, flag=True),
        _memory("a", "2.0", text="two", rank="1"),
    )
    old = {"id": vector_id("a", "3.0"), "namespace": "a", "coord": "3.0", "memory_type": "episodic"}
    old |= {"version": 1, "importance": 0.0, "fields": {"rank": 3, "flag": {"bool": False}}}
    old["vector"] = (await embedder.embed(["three"]))[0]
    await asyncio.to_thread(store._client.insert, store._collection, [old])
    store._written(["a"])  # written behind the store's back: its session searches must wait for it

    async def found(filters: dict[str, object]) -> set[str]:
        return {coord for coord, _ in await _search(store, "a", "one", **filters)}

    assert await found({"rank": {"$gte": 1}}) == {"1.0", "3.0"}  # "1" is no number
    assert await found({"flag": {"$ne": True}}) == {"2.0", "3.0"}
    assert await found({"$or": [{"rank": "1"}, {"flag": False}]}) == {"2.0", "3.0"}
    assert await found({"created_at": {"$gte": "2000-01-01"}}) == {"1.0", "2.0"}
    assert await found({"created_at": {"$not": {"$gte": "2000-01-01"}}}) == {"3.0"}
    await _put(store, _memory("a", "3.0", text="three", rank=3))  # written again: times kept
    assert await found({"created_at": {"$gte": "2000-01-01"}}) == {"1.0", "2.0", "3.0"}


async def test_a_collection_of_another_dimension_is_a_startup_error(
    store: MilvusVectorStore,
) -> None:
    other = MilvusVectorStore(store._client, collection=store._collection, dim=DIM * 2)
    with pytest.raises(StartupError, match=f"holds {DIM}-dim vectors"):
        other._ensure_collection()


def _never_fall_back(*args: object) -> None:
    raise AssertionError("the fast executor deferred to milvus-lite's own")


def _same_answers(fast: list[list[dict]], slow: list[list[dict]], context: object) -> None:
    """The fast executor's hits are lite's: the same ids and fields in the same order, the same
    distances."""
    assert [(h["id"], h["entity"]) for h in fast[0]] == [(h["id"], h["entity"]) for h in slow[0]], (
        context
    )
    assert [h["distance"] for h in fast[0]] == pytest.approx([h["distance"] for h in slow[0]]), (
        context
    )


def _fast_and_lite_s_own(col, args, original, monkeypatch):  # type: ignore[no-untyped-def]
    """The same search by the fast executor, then by milvus-lite's own."""
    from milvus_lite.engine import collection as lite_collection

    fast = col.search(**args)
    with monkeypatch.context() as patched:
        patched.setattr(lite_collection, "execute_search_with_index", original)
        slow = col.search(**args)
    return fast, slow


def _fast_only(tmp_path: Path, collection: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """A lite store whose searches run the fast executor, which must not defer to lite's own
    (that would make a comparison with it pass trivially); and lite's own, to compare with."""
    from milvus_lite.engine import collection as lite_collection

    from somamemory.stores import milvus_lite_search as milvus_module

    store = _open_lite(tmp_path, collection)
    assert lite_collection.execute_search_with_index is milvus_module._lite_execute_search
    original = milvus_module._lite_original
    assert original is not None
    monkeypatch.setattr(milvus_module, "_lite_original", _never_fall_back)
    return store, original


def _index_segments(monkeypatch: pytest.MonkeyPatch, segments: str) -> None:
    """Give every segment a vector index ("indexed"), or none, so all are searched exactly
    ("exact"; the default does so below a size these tests' segments never reach)."""
    from somamemory.stores import milvus_lite_builds

    monkeypatch.setattr(
        milvus_lite_builds, "EXACT_SEARCH_MAX_ROWS", 0 if segments == "indexed" else 10**9
    )


def _lite_collection(store: MilvusVectorStore):  # type: ignore[no-untyped-def]
    from milvus_lite.server_manager import server_manager_instance

    servers = server_manager_instance._servers.values()
    databases = [db for _server, db, _port in servers if db is not None]  # None: a lite process
    for db in databases:
        if db.has_collection(store._collection):
            return db.get_collection(store._collection)
    raise AssertionError("collection not found in any in-process milvus-lite")


@pytest.mark.parametrize("segments", ["indexed", "exact"])
async def test_lite_fast_search_answers_exactly_as_milvus_lite_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, segments: str
) -> None:
    """Upserts across flushes (one pk in several segments), flushed and unflushed deletes,
    unflushed rows and two namespaces: the fast executor and milvus-lite's own agree, with the
    segments indexed and with them searched exactly (as small segments are)."""
    _index_segments(monkeypatch, segments)
    store, original = _fast_only(tmp_path, "fast", monkeypatch)
    try:
        words = ["tea", "tax", "moon", "river", "code", "bread", "snow", "glass"]

        def text(i: int, round_: int) -> str:
            return f"{words[i % 8]} {words[(i * 3 + round_) % 8]} {i % 5}"

        for round_ in range(3):  # three flushes: three segments sharing pks
            await _put(
                store,
                *[
                    _memory(ns, f"{i}.0", text=text(i, round_), topic=words[i % 3])
                    for ns in ("a", "b")
                    for i in range(round_ * 10, 40 + round_ * 10)
                ],
            )
            await store.delete("a", [f"{i}.0" for i in range(round_, 60, 7)])
            await store.flush()
        await _put(store, *[_memory("a", f"{i}.0", text=text(i, 9)) for i in range(0, 70, 4)])
        await store.delete("a", [f"{i}.0" for i in range(1, 70, 9)])  # unflushed deletes
        col = _lite_collection(store)
        col._wait_for_bg()
        assert sum(1 for seg in col._segments_snapshot() if seg.num_rows) >= 3

        for ns, extra in [("a", ""), ("b", ""), ("a", ' and fields["topic"] == "tea"')]:
            expr = f"namespace == {milvus_string(ns)}{extra}"
            for query in ["tea tax", "moon river 3", "snow glass", "code"]:
                vector = (await embedder.embed([query]))[0]
                args = {
                    "query_vectors": [list(vector)],
                    "top_k": 25,
                    "expr": expr,
                    "output_fields": ["coord", "namespace"],
                    "search_params": {"ef": 64},
                }
                fast, slow = _fast_and_lite_s_own(col, args, original, monkeypatch)
                _same_answers(fast, slow, (ns, query))
                assert fast[0] and all(h["entity"]["namespace"] == ns for h in fast[0])
        # the fields a hit carries are those asked for, from segments and the memtable alike
        vector = (await embedder.embed(["tea tax"]))[0]
        for output_fields in (["coord"], ["fields", "version"], ["vector"], ["*"], None):
            args = {
                "query_vectors": [list(vector)],
                "top_k": 40,
                "expr": 'namespace == "a"',
                "output_fields": output_fields,
                "search_params": {"ef": 64},
            }
            fast, slow = _fast_and_lite_s_own(col, args, original, monkeypatch)
            _same_answers(fast, slow, output_fields)
            assert fast[0] and all(h["entity"] for h in fast[0]), output_fields
    finally:
        await store.close()


@pytest.mark.parametrize("segments", ["indexed", "exact"])
async def test_lite_fast_search_agrees_with_milvus_lite_after_every_flush_and_merge(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, segments: str
) -> None:
    """The fast executor keeps per-segment answers (newest rows, filter masks) between
    searches: after each round of overwrites, deletes and a flush (and lite's merges), with
    rows still in the memtable, it answers as milvus-lite's own executor does."""
    _index_segments(monkeypatch, segments)
    store, original = _fast_only(tmp_path, "rounds", monkeypatch)
    words = ["tea", "tax", "moon", "river", "code", "bread", "snow", "glass"]
    try:
        col = _lite_collection(store)
        for round_ in range(8):
            await _put(
                store,
                *[
                    _memory(
                        ns,
                        f"{i}.0",
                        text=f"{words[(i + round_) % 8]} {words[i % 8]}",
                        topic=words[(i + round_) % 3],
                    )
                    for ns in ("a", "b")
                    for i in range(round_ * 5, round_ * 5 + 30)
                ],
            )
            await store.delete("a", [f"{i}.0" for i in range(round_, 70, 11)])
            if round_ % 2:
                await store.flush()  # even rounds leave their rows in the memtable
            col._wait_for_bg()  # both executors see the same segments and indexes
            for ns, extra in [("a", ""), ("b", ' and fields["topic"] == "moon"')]:
                query = (await embedder.embed([f"{words[round_]} tea"]))[0]
                args = {
                    "query_vectors": [list(query)],
                    "top_k": 20,
                    "expr": f"namespace == {milvus_string(ns)}{extra}",
                    "output_fields": ["coord", "namespace"],
                    "search_params": {"ef": 200},
                }
                fast, slow = _fast_and_lite_s_own(col, args, original, monkeypatch)
                assert fast[0], (round_, ns)
                assert [(h["id"], h["entity"]) for h in fast[0]] == [
                    (h["id"], h["entity"]) for h in slow[0]
                ], (round_, ns)
        assert sum(1 for seg in col._segments_snapshot() if seg.num_rows) >= 2
    finally:
        await store.close()


async def test_lite_fast_search_agrees_with_milvus_lite_as_the_memtable_grows_between_searches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A memtable's columns are kept between searches and only the batches written since are
    converted: with new rows, overwrites and deletes between searches and no flush, each
    search (with and without a field filter) answers as milvus-lite's own executor does."""
    store, original = _fast_only(tmp_path, "growing", monkeypatch)
    words = ["tea", "tax", "moon", "river", "code", "bread", "snow", "glass"]
    try:
        col = _lite_collection(store)
        batches = 0
        for round_ in range(6):
            for ns in ("a", "b"):  # one upsert each: two batches a round
                await _put(
                    store,
                    *[
                        _memory(
                            ns,
                            f"{i}.0",
                            text=f"{words[(i * round_) % 8]} {words[i % 8]}",
                            topic=words[(i + round_) % 3],
                        )
                        for i in range(round_ * 4, round_ * 4 + 12)
                    ],
                )
            await store.delete("a", [f"{i}.0" for i in range(round_, 40, 9)])
            grown = len(col._memtable._insert_batches)
            assert grown > batches  # the same memtable, longer: nothing was flushed
            batches = grown
            for ns, extra in [("a", ""), ("b", ' and fields["topic"] == "moon"')]:
                query = (await embedder.embed([f"{words[round_]} tea"]))[0]
                args = {
                    "query_vectors": [list(query)],
                    "top_k": 15,
                    "expr": f"namespace == {milvus_string(ns)}{extra}",
                    "output_fields": ["coord", "namespace"],
                }
                fast, slow = _fast_and_lite_s_own(col, args, original, monkeypatch)
                assert fast[0], (round_, ns)
                _same_answers(fast, slow, (round_, ns))
    finally:
        await store.close()


async def test_lite_fast_search_brute_forces_unindexed_segments_as_milvus_lite_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Segments whose index is not built yet (as after a flush, until the background build
    ends): the fast executor's brute force and milvus-lite's own find the same rows."""
    store, original = _fast_only(tmp_path, "brute", monkeypatch)
    try:
        for round_ in range(2):  # two segments sharing pks, one delete in each
            await _put(
                store,
                *[
                    _memory("a", f"{i}.0", text=f"note {i} {round_}")
                    for i in range(round_ * 30, 80)
                ],
            )
            await store.delete("a", [f"{round_ * 7 + 3}.0"])
            await store.flush()
        col = _lite_collection(store)
        col._wait_for_bg()
        segments = [seg for seg in col._segments_snapshot() if seg.num_rows]
        for seg in segments:
            seg.indexes.pop("vector", None)
        for query in ["note 3", "note 41 1", "note 77 0"]:
            args = {
                "query_vectors": [list((await embedder.embed([query]))[0])],
                "top_k": 15,
                "expr": f"namespace == {milvus_string('a')}",
                "output_fields": ["coord"],
            }
            fast, slow = _fast_and_lite_s_own(col, args, original, monkeypatch)
            assert len(fast[0]) == 15
            assert sorted((round(h["distance"], 5), h["id"]) for h in fast[0]) == sorted(
                (round(h["distance"], 5), h["id"]) for h in slow[0]
            )
    finally:
        await store.close()


async def test_only_segments_of_some_size_get_a_vector_index_and_all_are_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flush of a few rows leaves a segment without an index (searched exactly), a large one
    gets its index; a search finds memories in both, before and after the store is reopened."""
    from somamemory.stores import milvus_lite_builds

    monkeypatch.setattr(milvus_lite_builds, "EXACT_SEARCH_MAX_ROWS", 100)

    def indexed_by_size(store: MilvusVectorStore) -> dict[int, bool]:
        col = _lite_collection(store)
        col._wait_for_bg()
        segments = [seg for seg in col._segments_snapshot() if seg.num_rows]
        return {seg.num_rows: "vector" in seg.indexes for seg in segments}

    async def found_first(store: MilvusVectorStore, text: str) -> str:
        return (await _search(store, "a", text, k=1))[0][0]

    store = _open_lite(tmp_path, "sized")
    try:
        await _put(store, *[_memory("a", f"{i}.0", text=f"small note {i}") for i in range(60)])
        await store.flush()
        await _put(store, *[_memory("a", f"{i}.0", text=f"large note {i}") for i in range(60, 210)])
        await store.flush()
        assert indexed_by_size(store) == {60: False, 150: True}
        assert await found_first(store, "small note 17") == "17.0"
        assert await found_first(store, "large note 170") == "170.0"
    finally:
        await store.close()
    reopened = _open_lite(tmp_path, "sized")
    try:
        assert indexed_by_size(reopened) == {60: False, 150: True}
        assert await found_first(reopened, "small note 42") == "42.0"
    finally:
        await reopened.close()


async def test_merges_and_index_builds_run_at_the_lowest_cpu_priority(tmp_path: Path) -> None:
    """Lite's background thread (merges, index builds) takes only the CPU requests leave."""
    store = _open_lite(tmp_path, "niced")
    try:
        await _put(store, _memory("a", "1.0", text="one"))
        await store.flush()
        col = _lite_collection(store)
        col._wait_for_bg()
        (background,) = col._bg_executor._threads
        assert background.native_id != threading.get_native_id()
        assert os.getpriority(os.PRIO_PROCESS, background.native_id) == 19
        assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == 0
    finally:
        await store.close()


def test_milvus_lite_builds_hnsw_with_the_parameters_the_store_asks_for(tmp_path: Path) -> None:
    """milvus-lite drops build parameters given flat; the store nests them so they hold."""
    opened = _open_lite(tmp_path, "built")
    try:
        index = opened._client.describe_index("built", "vector")
        assert index["index_type"] == "HNSW"
        assert index["params"] == {"M": 16, "efConstruction": 64}
    finally:
        asyncio.run(opened.close())


async def test_a_search_during_a_flush_still_finds_what_was_written(tmp_path: Path) -> None:
    """milvus-lite moves rows from memory to a segment on flush; a search meanwhile sees them."""
    opened = _open_lite(tmp_path, "flushing")
    try:
        await _put(opened, *(_memory("ns", f"old-{i}", text=f"old memory {i}") for i in range(300)))
        await opened.flush()
        missed = []
        for round_ in range(40):
            text = f"written just now, round {round_}"
            await _put(opened, _memory("ns", f"new-{round_}", text=text))
            answers = await asyncio.gather(
                opened.flush(), *(_search(opened, "ns", text, k=3) for _ in range(3))
            )
            if any(f"new-{round_}" not in [coord for coord, _ in hits] for hits in answers[1:]):
                missed.append(round_)
        assert missed == []
    finally:
        await opened.close()


async def test_searches_go_on_while_a_merge_holds_milvus_lite_s_maintenance_lock(
    tmp_path: Path,
) -> None:
    """A background merge holds lite's maintenance lock while it rewrites files; a search then
    answers from the segments published last (a flush waiting for the merge does not hold it
    back), sees what was just written, and sees it again once the flush has moved it."""
    import threading

    opened = _open_lite(tmp_path, "merging")
    try:
        await _put(opened, *(_memory("ns", f"old-{i}", text=f"old memory {i}") for i in range(50)))
        await opened.flush()
        col = _lite_collection(opened)
        col._wait_for_bg()
        holding, release = threading.Event(), threading.Event()

        def merge() -> None:
            with col._maintenance_lock:
                holding.set()
                release.wait(60)

        merging = threading.Thread(target=merge)
        merging.start()
        holding.wait(10)
        try:
            await _put(opened, _memory("ns", "new", text="written during a merge"))
            flushing = asyncio.ensure_future(opened.flush())  # waits for the merge
            await asyncio.sleep(0.2)
            during = await asyncio.wait_for(_search(opened, "ns", "written during a merge"), 30)
            old = await asyncio.wait_for(_search(opened, "ns", "old memory 7"), 30)
            assert not flushing.done()
        finally:
            release.set()
            merging.join()
        await flushing
        after = await _search(opened, "ns", "written during a merge")
        assert "new" in [coord for coord, _ in during]
        assert "old-7" in [coord for coord, _ in old]
        assert "new" in [coord for coord, _ in after]
    finally:
        await opened.close()


async def test_a_search_does_not_wait_for_a_flush_and_sees_every_row_it_moves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a flush writes the frozen memtable to a segment (held open here), a search answers
    at once: from the segments, the frozen memtable (its rows, its overwrites and its delete of
    a stored row) and the live one (a row written meanwhile, an overwrite and a delete of frozen
    rows), each memory once, in its newest version; and the same once the flush has ended."""
    from milvus_lite.engine import collection as lite_collection

    opened = _open_lite(tmp_path, "pinned")
    holding, release = threading.Event(), threading.Event()
    original_flush = lite_collection.execute_flush

    def held_flush(*args: object, **kwargs: object) -> object:
        holding.set()
        release.wait(60)
        return original_flush(*args, **kwargs)

    try:
        await _put(opened, *(_memory("ns", f"old-{i}", text=f"old memory {i}") for i in range(40)))
        await opened.flush()
        await _put(
            opened, *(_memory("ns", f"moving-{i}", text=f"moving memory {i}") for i in range(5))
        )
        await _put(opened, _memory("ns", "old-3", text="old three, rewritten before the flush"))
        await opened.delete("ns", ["old-5"])
        monkeypatch.setattr(lite_collection, "execute_flush", held_flush)
        flushing = asyncio.ensure_future(opened.flush())
        try:
            assert await asyncio.to_thread(holding.wait, 30)
            await _put(opened, _memory("ns", "later", text="written while the flush ran"))
            await _put(opened, _memory("ns", "moving-1", text="moving one, rewritten meanwhile"))
            await opened.delete("ns", ["moving-2"])

            async def answers() -> dict[str, list[str]]:
                texts = {
                    "all": "old memory 1",
                    "moving-0": "moving memory 0",
                    "moving-1": "moving one, rewritten meanwhile",
                    "old-3": "old three, rewritten before the flush",
                    "later": "written while the flush ran",
                }
                found = {}
                for name, text in texts.items():
                    hits = await asyncio.wait_for(_search(opened, "ns", text, k=100), 30)
                    found[name] = [coord for coord, _ in hits]
                for name in ("moving-3", "later"):  # a filter reads the memtables' fields too
                    text = texts.get(name, "moving memory 3")
                    where = parse_filter("ns", {"text": text})
                    assert where is not None
                    vector = (await embedder.embed([text]))[0]
                    hits = await asyncio.wait_for(opened.search(vector, top_k=100, where=where), 30)
                    found[f"filtered {name}"] = [coord for coord, _ in hits]
                return found

            during = await answers()
            assert not flushing.done()  # the searches did not wait for it
        finally:
            release.set()
        await flushing
        after = await answers()
    finally:
        await opened.close()
    expected = {f"old-{i}" for i in range(40)} - {"old-5"}
    expected |= {"moving-0", "moving-1", "moving-3", "moving-4", "later"}
    for found in (during, after):
        assert sorted(found["all"]) == sorted(expected)  # each once, nothing deleted
        for name in ("moving-0", "moving-1", "old-3", "later"):
            assert found[name][0] == name  # found by its newest text first
        assert found["filtered moving-3"] == ["moving-3"]
        assert found["filtered later"] == ["later"]
