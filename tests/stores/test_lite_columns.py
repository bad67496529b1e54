"""A memtable's columns kept between searches: what they give equals the batches' columns
joined afresh, a column already given never changes under its reader, and what is kept stays
bounded."""

from __future__ import annotations

import gc

import numpy as np
import pyarrow as pa

from somamemory.stores.milvus_lite_columns import ColumnFold, MemtableColumns


def _batch(rows: int, start: int) -> pa.RecordBatch:
    return pa.record_batch({"x": pa.array(np.arange(start, start + rows, dtype=np.float32))})


def _values(batch: pa.RecordBatch) -> np.ndarray:
    return batch.column("x").to_numpy()


class Memtable:
    """Stands for a milvus-lite memtable: the columns are kept per object, while it lives."""


def test_a_fold_over_a_growing_list_gives_the_batches_joined_and_where_each_starts() -> None:
    fold, batches, converted = ColumnFold(), [], []

    def counted(batch: pa.RecordBatch) -> np.ndarray:
        converted.append(batch)
        return _values(batch)

    start = 0
    for size in [3, 1, 7, 2, 60, 1, 5]:
        batches.append(_batch(size, start))
        start += size
        folded = fold.over(tuple(batches), counted, max_bytes=1 << 20)
        assert folded is not None
        assert folded.values.tolist() == list(range(start))
        assert folded.starts == tuple(np.cumsum([0] + [b.num_rows for b in batches]).tolist())
    assert converted == batches  # each batch converted once


def test_a_column_given_to_a_search_does_not_change_as_batches_are_appended() -> None:
    fold = ColumnFold()
    batches = [_batch(4, 0)]
    first = fold.over(tuple(batches), _values, max_bytes=1 << 20)
    assert first is not None
    kept = first.values.copy()
    for i in range(1, 40):  # growing in place, then into new arrays
        batches.append(_batch(5, 4 + (i - 1) * 5))
        assert fold.over(tuple(batches), _values, max_bytes=1 << 20) is not None
        assert np.array_equal(first.values, kept)


def test_a_batch_without_the_column_gives_none_and_a_column_over_budget_is_not_kept() -> None:
    batches = (_batch(2, 0), pa.record_batch({"y": pa.array([1.0])}))
    assert (
        ColumnFold().over(batches, lambda b: _values(b) if "x" in b.schema.names else None, 1 << 20)
        is None
    )

    fold, converted = ColumnFold(), []

    def counted(batch: pa.RecordBatch) -> np.ndarray:
        converted.append(batch)
        return _values(batch)

    big = (_batch(100, 0),)
    for _ in range(2):
        folded = fold.over(big, counted, max_bytes=64)  # 100 float32 values: 400+ bytes
        assert folded is not None and folded.values.tolist() == list(range(100))
    assert len(converted) == 2  # converted again: nothing kept


def test_columns_are_kept_per_memtable_and_key_and_go_with_the_memtable() -> None:
    columns = MemtableColumns(1 << 20)
    calls: list[str] = []

    def tagged(tag: str):  # type: ignore[no-untyped-def]
        def column(batch: pa.RecordBatch) -> np.ndarray:
            calls.append(tag)
            return _values(batch) + (100 if tag == "b" else 0)

        return column

    one, two = Memtable(), Memtable()
    batches = (_batch(3, 0),)
    for _ in range(2):
        a = columns.column(one, "a", batches, tagged("a"))
        b = columns.column(one, "b", batches, tagged("b"))
        other = columns.column(two, "a", batches, tagged("a"))
        unkept = columns.column(one, None, batches, tagged("none"))
        assert a is not None and b is not None and other is not None and unkept is not None
        assert a.values.tolist() == [0, 1, 2] and b.values.tolist() == [100, 101, 102]
    assert calls.count("a") == 2 and calls.count("b") == 1 and calls.count("none") == 2
    del one
    gc.collect()
    assert len(columns._folds) == 1  # the dropped memtable's columns went with it


def test_a_search_holding_an_older_read_of_the_list_gets_its_own_batches_unconverted() -> None:
    """Searches run at once: one may read the batch list before another's longer read has
    been folded. It gets the rows of the batches it read, and nothing is converted again."""
    fold, converted = ColumnFold(), []

    def counted(batch: pa.RecordBatch) -> np.ndarray:
        converted.append(batch)
        return _values(batch)

    batches = [_batch(3, 0), _batch(2, 3), _batch(4, 5), _batch(1, 9)]
    assert fold.over(tuple(batches), counted, max_bytes=1 << 20) is not None
    older = fold.over(tuple(batches[:2]), counted, max_bytes=1 << 20)
    assert older is not None
    assert older.values.tolist() == [0, 1, 2, 3, 4] and older.starts == (0, 3, 5)
    latest = fold.over(tuple(batches), counted, max_bytes=1 << 20)
    assert latest is not None and latest.values.tolist() == list(range(10))
    assert converted == batches
