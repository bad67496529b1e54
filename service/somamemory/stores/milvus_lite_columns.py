"""A milvus-lite memtable's record batches as whole columns, each batch converted once.

A memtable only appends record batches (one per upsert) until a flush replaces it with a new
one, and a batch never changes. A search reads every batch's vectors as one matrix and, with a
filter, which rows match. Under steady writes a memtable holds a batch per group commit, ~100 a
second, and even with each batch's arrays kept, looking them up and joining them again took
~1 ms of every search. Here each column is kept per memtable as one array grown in place: a
search converts only the batches appended since the one before it and reads a prefix of the
array, which later appends never change.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

Column = Callable[[pa.RecordBatch], "np.ndarray | None"]  # one batch's column, None: not one

# columns kept per memtable, the least recently read first out: its vectors (read by every
# search) and a filter mask per filter searched since its last flush
_COLUMNS_PER_MEMTABLE = 32


@dataclass(frozen=True)
class Folded:
    """A column over a memtable's first batches: ``values[starts[b] + row]`` is batch ``b``'s
    ``row``."""

    values: np.ndarray
    starts: tuple[int, ...]


class ColumnFold:
    """One column of a memtable's batches, grown as batches are appended."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buffer: np.ndarray | None = None
        self._starts = [0]

    def over(
        self, batches: Sequence[pa.RecordBatch], column: Column, max_bytes: int
    ) -> Folded | None:
        """The column over ``batches``, the memtable's list read under its lock (a list that
        only grows): the batches folded before, then those appended since (converted now).
        None: no batches, or one without such a column. A column of more than ``max_bytes`` is
        given but not kept (the array kept has room for as many rows again, so that appends
        rarely copy it)."""
        with self._lock:
            done = len(self._starts) - 1
            if done >= len(batches) and self._buffer is not None:  # folded already (a search
                # that read the list before another search's longer read: its first batches)
                prefix = tuple(self._starts[: len(batches) + 1])
                return Folded(self._buffer[: prefix[-1]], prefix) if batches else None
            parts: list[np.ndarray] = []
            for batch in batches[done:]:
                part = column(batch)
                if part is None:
                    return None
                parts.append(part)
            starts = list(self._starts)
            for part in parts:
                starts.append(starts[-1] + len(part))
            folded_rows, rows = self._starts[-1], starts[-1]
            buffer = self._buffer
            if buffer is None and not parts:
                return None
            sample = buffer if buffer is not None else parts[0]
            keep = rows * sample.itemsize * int(np.prod(sample.shape[1:])) <= max_bytes
            if buffer is None or rows > len(buffer):
                kept = [buffer[:folded_rows]] if buffer is not None else []
                buffer = _joined([*kept, *parts], room=rows * 2 if keep else rows)
            elif parts:
                buffer[folded_rows:rows] = np.concatenate(parts)
            self._buffer, self._starts = (buffer, starts) if keep else (None, [0])
            return Folded(buffer[:rows], tuple(starts))


def _joined(arrays: list[np.ndarray], room: int) -> np.ndarray:
    """``arrays`` one after another at the start of a new array of ``room`` rows."""
    first = arrays[0]
    joined = np.empty((room, *first.shape[1:]), dtype=first.dtype)
    at = 0
    for array in arrays:
        joined[at : at + len(array)] = array
        at += len(array)
    return joined


class MemtableColumns:
    """The column folds of each live memtable (dropped with it), the least recently read of a
    memtable's columns first out beyond ``_COLUMNS_PER_MEMTABLE``."""

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._lock = threading.Lock()
        self._folds: weakref.WeakKeyDictionary[Any, OrderedDict[Hashable, ColumnFold]]
        self._folds = weakref.WeakKeyDictionary()

    def column(
        self,
        memtable: Any,
        key: Hashable | None,
        batches: Sequence[pa.RecordBatch],
        column: Column,
    ) -> Folded | None:
        """``column`` over ``batches`` of ``memtable``, kept under ``key`` (None: not kept)."""
        if key is None:
            return ColumnFold().over(batches, column, -1)
        with self._lock:
            folds = self._folds.setdefault(memtable, OrderedDict())
            fold = folds.get(key)
            if fold is None:
                fold = folds[key] = ColumnFold()
                if len(folds) > _COLUMNS_PER_MEMTABLE:
                    folds.popitem(last=False)
            else:
                folds.move_to_end(key)
        return fold.over(batches, column, self._max_bytes)
