"""milvus-lite's delete marks stay bounded under deletes while an old memory lives, and a mark
is dropped only when no stored row of its key is older than it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from somamemory.stores.milvus_lite_tombstones import drop_unneeded_marks, install_tombstone_gc

pytest.importorskip("milvus_lite")


class Marks:
    def __init__(self, marks: dict[str, int]) -> None:
        self._map = dict(marks)


class Segment:
    def __init__(self, rows: list[tuple[str, int]]) -> None:
        self.num_rows = len(rows)
        self.pk_to_row = {pk: i for i, (pk, _) in enumerate(rows)}
        self.seqs = np.asarray([seq for _, seq in rows], dtype=np.uint64)


def test_a_mark_stays_while_an_older_row_of_its_key_is_stored() -> None:
    marks = Marks({"older": 5, "rewritten": 5, "gone": 5})
    segments = [Segment([("older", 3), ("kept", 1)]), Segment([("rewritten", 7)])]
    assert drop_unneeded_marks(marks, segments) == 2
    assert marks._map == {"older": 5}


def test_nothing_is_dropped_when_a_segment_repeats_a_key() -> None:
    marks = Marks({"gone": 5})
    assert drop_unneeded_marks(marks, [Segment([("a", 1), ("a", 2)])]) == 0
    assert marks._map == {"gone": 5}


def _collection(path: Path) -> Any:
    from milvus_lite.engine.collection import Collection
    from milvus_lite.schema.types import CollectionSchema, DataType, FieldSchema

    schema = CollectionSchema(
        fields=[
            FieldSchema("id", DataType.VARCHAR, is_primary=True, max_length=64),
            FieldSchema("vector", DataType.FLOAT_VECTOR, dim=4),
        ]
    )
    return Collection("marks", str(path), schema)


def test_delete_marks_stay_bounded_while_an_old_memory_lives(tmp_path: Path) -> None:
    install_tombstone_gc()
    collection = _collection(tmp_path)
    try:
        collection.insert([{"id": "old", "vector": [1.0, 0.0, 0.0, 0.0]}])
        collection.flush()
        for i in range(120):  # milvus-lite alone keeps all 120 marks: "old" predates them all
            collection.insert([{"id": f"m{i}", "vector": [0.0, 1.0, 0.0, float(i)]}])
            collection.flush()
            collection.delete([f"m{i}"])
            collection.flush()
            collection._wait_for_bg()
            assert len(collection._delta_index) <= 4, i  # only marks whose rows await a merge
        assert collection.get([f"m{i}" for i in range(120)]) == []
        found = collection.search([[0.0, 1.0, 0.0, 5.0]], top_k=10)
        assert [hit["id"] for hit in found[0]] == ["old"]
    finally:
        collection.close()
    reopened = _collection(tmp_path)  # the delete files are read back, the marks dropped again
    try:
        assert len(reopened._delta_index) <= 4
        assert reopened.get(["m0", "m119", "old"]) == [
            {"id": "old", "vector": [1.0, 0.0, 0.0, 0.0]}
        ]
    finally:
        reopened.close()


def test_a_delete_hides_the_row_still_stored_until_a_merge_drops_it(tmp_path: Path) -> None:
    install_tombstone_gc()
    collection = _collection(tmp_path)
    try:
        collection.insert([{"id": "a", "vector": [1.0, 0.0, 0.0, 0.0]}])
        collection.insert([{"id": "b", "vector": [0.0, 1.0, 0.0, 0.0]}])
        collection.flush()
        collection.delete(["a", "never-stored"])
        collection.flush()
        collection._wait_for_bg()
        assert set(collection._delta_index.snapshot) == {"a"}  # "a"'s row is in a segment
        assert [r["id"] for r in collection.get(["a", "b"])] == ["b"]
        found = collection.search([[1.0, 0.0, 0.0, 0.0]], top_k=5)
        assert [hit["id"] for hit in found[0]] == ["b"]
    finally:
        collection.close()
