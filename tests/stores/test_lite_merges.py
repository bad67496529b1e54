"""milvus-lite's merges publish their segment only once its index is built: until then searches
walk the merged segments' graphs, and deletes and rewrites made meanwhile hold afterwards."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from somamemory.stores.milvus import MilvusVectorStore
from somamemory.stores.milvus_lite_merges import plan, swap_in, write_merged

from .test_vector_store import _index_segments, _lite_collection, _memory, _open_lite, _put, _search

pytest.importorskip("milvus_lite")

ROWS = 30  # per flushed segment; lite merges four small segments at a time


def _named(col: Any) -> set[str]:
    """The data files the manifest names, every partition."""
    return {os.path.basename(f) for fs in col._manifest.get_all_data_files().values() for f in fs}


def _on_disk(col: Any) -> set[str]:
    """The data files present, every partition."""
    found: set[str] = set()
    for partition in col._manifest.list_partitions():
        data = Path(col._data_dir) / "partitions" / partition / "data"
        found |= {p.name for p in data.glob("*.parquet")} if data.exists() else set()
    return found


def _index_files(col: Any) -> set[str]:
    found: set[str] = set()
    for partition in col._manifest.list_partitions():
        indexes = Path(col._index_dir(partition))
        found |= {p.name.split(".", 1)[0] for p in indexes.glob("*")} if indexes.exists() else set()
    return found


class HeldBuilds:
    """Hold the index build of a merged segment (one the manifest does not name yet) until
    released, recording the background thread's nice value and faiss threads meanwhile."""

    def __init__(self, col: Any, monkeypatch: pytest.MonkeyPatch, fail: bool = False) -> None:
        import faiss

        self.col, self.fail, self._faiss = col, fail, faiss
        self.started, self.released = threading.Event(), threading.Event()
        self.seen: list[tuple[int, int]] = []
        self._build = col._build_or_load_segment_index
        monkeypatch.setattr(col, "_build_or_load_segment_index", self._held)

    def _held(self, segment: Any, spec: Any) -> None:
        if os.path.basename(segment.file_path) not in _named(self.col):
            thread = threading.get_native_id()
            self.seen.append(
                (os.getpriority(os.PRIO_PROCESS, thread), self._faiss.omp_get_max_threads())
            )
            self.started.set()
            assert self.released.wait(30)
            if self.fail:
                raise RuntimeError("the build failed (as a crash would end it)")
        self._build(segment, spec)


async def _fill(store: MilvusVectorStore, rounds: range) -> None:
    """``ROWS`` memories per round of namespace a, each round flushed into its own segment."""
    words = ["tea", "tax", "moon", "river", "code", "bread", "snow", "glass"]
    for r in rounds:
        await _put(
            store,
            *[
                _memory("a", f"{i}.0", text=f"{words[i % 8]} {words[(i // 8) % 8]} {i}")
                for i in range(r * ROWS, (r + 1) * ROWS)
            ],
        )
        await store.flush()


async def test_a_merge_is_searched_through_its_inputs_until_its_index_is_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _index_segments(monkeypatch, "indexed")  # every segment gets a graph, however small
    store = _open_lite(tmp_path, "merges")
    col = _lite_collection(store)
    try:
        await _fill(store, range(3))
        col._wait_for_bg()
        held = HeldBuilds(col, monkeypatch)
        await _fill(store, range(3, 4))  # the fourth segment sets off a merge of all four
        assert await asyncio.to_thread(held.started.wait, 30)

        inputs = _named(col)
        published = [seg for seg in col._segments_snapshot() if seg.num_rows]
        assert [seg.num_rows for seg in published] == [ROWS] * 4  # the inputs, not the merge
        assert sum(1 for seg in published if "vector" in seg.indexes) == 3  # the 4th: exact
        assert len(_on_disk(col) - inputs) == 1  # the merged segment, written, not published

        await store.delete("a", ["1.0"])  # both in the merge's input, after it read them
        await _put(store, _memory("a", "2.0", text="an entirely new second memory"))
        await asyncio.wait_for(store.flush(), 10)  # a flush does not wait for the build
        hits = await _search(store, "a", "tax tea 1", k=ROWS * 4)
        assert "1.0" not in [coord for coord, _ in hits] and len(hits) == ROWS * 4 - 1
        assert (await _search(store, "a", "an entirely new second memory", k=1))[0][0] == "2.0"

        held.released.set()
        await asyncio.to_thread(col._wait_for_bg, 30)
        segments = sorted(col._segments_snapshot(), key=lambda seg: -seg.num_rows)
        merged = segments[0]
        assert merged.num_rows == ROWS * 4 and "vector" in merged.indexes
        assert not inputs & _named(col) and not inputs & _on_disk(col)
        assert held.seen == [(19, 1)]  # the build yields the cores to requests
        hits = await _search(store, "a", "tax tea 1", k=ROWS * 4)
        assert "1.0" not in [coord for coord, _ in hits] and len(hits) == ROWS * 4 - 1
        assert (await _search(store, "a", "an entirely new second memory", k=1))[0][0] == "2.0"
        assert await store.count("a") == ROWS * 4 - 1
    finally:
        await store.close()

    reopened = _open_lite(tmp_path, "merges")  # what the merge swapped in is what is stored
    try:
        assert await reopened.count("a") == ROWS * 4 - 1
        assert (await _search(reopened, "a", "an entirely new second memory", k=1))[0][0] == "2.0"
    finally:
        await reopened.close()


async def test_a_merge_that_fails_before_its_swap_leaves_the_inputs_and_no_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _index_segments(monkeypatch, "indexed")
    store = _open_lite(tmp_path, "failed_merge")
    col = _lite_collection(store)
    try:
        await _fill(store, range(3))
        col._wait_for_bg()
        held = HeldBuilds(col, monkeypatch, fail=True)
        await _fill(store, range(3, 4))
        assert await asyncio.to_thread(held.started.wait, 30)
        inputs = _named(col)
        held.released.set()
        await asyncio.to_thread(col._wait_for_bg, 30)
        assert _named(col) == inputs == _on_disk(col)  # nothing swapped, nothing left behind
        assert _index_files(col) <= {name.split(".", 1)[0] for name in inputs}
        assert await store.count("a") == ROWS * 4

        held.fail = False  # the next flush's merge goes through
        await _fill(store, range(4, 5))
        await asyncio.to_thread(col._wait_for_bg, 30)
        assert max(seg.num_rows for seg in col._segments_snapshot()) >= ROWS * 4
        assert _named(col) == _on_disk(col)
        assert await store.count("a") == ROWS * 5
    finally:
        await store.close()


async def test_a_merge_whose_inputs_went_away_is_not_swapped_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A partition dropped (or its files merged otherwise) while the merge built its index: the
    merge is discarded rather than bringing the gone rows back."""
    _index_segments(monkeypatch, "indexed")
    store = _open_lite(tmp_path, "gone")
    col = _lite_collection(store)
    try:
        await _fill(store, range(3))
        col._wait_for_bg()
        monkeypatch.setattr(col, "_schedule_bg_maintenance", lambda: None)  # merge by hand
        await _fill(store, range(3, 4))
        (partition,) = {p for p, files in col._manifest.get_all_data_files().items() if files}
        merge = plan(col, partition)
        assert merge is not None and len(merge.inputs) == 4
        write_merged(col, merge)
        written = {os.path.basename(path) for path, _ in merge.outputs}
        stems = {name.split(".", 1)[0] for name in written}
        assert written <= _on_disk(col) and stems <= _index_files(col)  # built, not published
        with col._maintenance_lock:
            col._manifest.remove_data_files(partition, merge.inputs[:1])
            assert swap_in(col, merge) is False
        assert not written & _on_disk(col)
        assert not stems & _index_files(col)
        assert not written & _named(col)
    finally:
        await store.close()
