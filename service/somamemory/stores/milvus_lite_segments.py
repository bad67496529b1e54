"""What milvus-lite 3.2 recomputes on every search, computed once per immutable segment.

Used by the search executor in ``milvus_lite_search``. A segment never changes once published, so
its filter masks, vector norms, float16 copy for exact scans and, per set of segments, which of
its rows are the newest version of their pk, are the same for every search until the segment set
changes. Entries are keyed by object identity and hold only a weak reference to what they
describe: a dead segment's entry is never reused for a new object at the same address, and never
keeps a dropped segment's vectors alive.
"""

from __future__ import annotations

import concurrent.futures
import functools
import json
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Collection, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import numpy as np
import pyarrow as pa

from .milvus_lite_columns import MemtableColumns
from .milvus_lite_half import HalfPrecisionScan

_FILTER_BYTES = 64 << 20  # filter masks kept (one byte per row): 640 masks of 100k rows
_NORM_BYTES = 64 << 20  # inverse norms kept (four bytes per row)
# float16 copies of segments waiting for their HNSW graph (two bytes a value), dropped once the
# graph is there: lite's segments hold up to 100k rows (its MAX_SEGMENT_ROWS), 77 MB at 384
# dims, so three such copies; a copy that does not fit beside those kept is not made
_HALF_SCAN_BYTES = 256 << 20
_MEMTABLE_COLUMN_BYTES = 32 << 20  # a memtable column kept: vectors of ~20,000 rows of 384 dims
# newest-row masks kept for this many sets of segments: the last one (what the next set is
# derived from) and the one before, for a search still reading it; each holds its segments'
# pk_to_row dicts (~10 MB per 100k rows), so a merged-away segment's go with the next change
_SEGMENT_SETS = 2


class _Measured(Protocol):
    @property
    def nbytes(self) -> int: ...


Value = TypeVar("Value", bound=_Measured)


class IdentityMemo:
    """Values computed from an object, kept while it lives, least recently used first out."""

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._bytes = 0
        self._lock = threading.RLock()  # a weakref callback may run inside a locked section
        self._entries: OrderedDict[tuple[int, Hashable], tuple[Any, Any, int]] = OrderedDict()

    def peek(self, owner: Any, key: Hashable) -> Any:
        """The value kept for ``owner`` under ``key``, or None."""
        slot = (id(owner), key)
        with self._lock:
            hit = self._entries.get(slot)
            if hit is not None and hit[0]() is owner:
                self._entries.move_to_end(slot)
                return hit[1]
        return None

    def get(self, owner: Any, key: Hashable, compute: Callable[[], Value]) -> Value:
        """``compute()``'s answer for ``owner`` (cached under ``key``)."""
        kept = self.peek(owner, key)
        if kept is not None:
            return kept  # type: ignore[no-any-return]
        slot = (id(owner), key)
        value = compute()
        size = int(value.nbytes)
        if size > self._max_bytes:
            return value

        def forget(_: object, slot: tuple[int, Hashable] = slot) -> None:
            with self._lock:
                entry = self._entries.get(slot)
                if entry is not None and entry[0]() is None:
                    self._drop(slot)

        with self._lock:
            if slot in self._entries:
                self._drop(slot)
            self._entries[slot] = (weakref.ref(owner, forget), value, size)
            self._bytes += size
            while self._bytes > self._max_bytes:
                self._drop(next(iter(self._entries)))
        return value

    def fits(self, size: int) -> bool:
        """Whether a value of ``size`` bytes would be kept without dropping another."""
        with self._lock:
            return self._bytes + size <= self._max_bytes

    def discard(self, owner: Any, key: Hashable) -> None:
        """Forget ``owner``'s value under ``key``, if kept."""
        slot = (id(owner), key)
        with self._lock:
            entry = self._entries.get(slot)
            if entry is not None and entry[0]() is owner:
                self._drop(slot)

    def _drop(self, slot: tuple[int, Hashable]) -> None:
        self._bytes -= self._entries.pop(slot)[2]

    def __len__(self) -> int:
        return len(self._entries)


filter_masks = IdentityMemo(_FILTER_BYTES)
inverse_norms = IdentityMemo(_NORM_BYTES)
half_scans = IdentityMemo(_HALF_SCAN_BYTES)


def filter_key(compiled: Any) -> Hashable | None:
    """The key a compiled filter's masks are kept under (None: not kept). Lite reuses a
    compiled filter per expression; the id tells apart two compilations of one text (lite binds
    naive time literals to a timezone), and a reused id with the same text is the same filter."""
    source = getattr(compiled, "source", None)
    return ("filter", source, id(compiled)) if isinstance(source, str) else None


def segment_filter(seg: Any, compiled: Any, evaluate: Callable[[], np.ndarray]) -> np.ndarray:
    """The rows of ``seg`` that ``compiled`` (a compiled filter) matches; read only."""
    key = filter_key(compiled)
    if key is None:
        return evaluate().astype(bool)
    return filter_masks.get(seg.seqs, key, lambda: evaluate().astype(bool))


def inverse_norm(vectors: np.ndarray) -> np.ndarray:
    """1/|v| per row of ``vectors`` (1 for zero rows), as float32; read only."""

    def compute() -> np.ndarray:
        norms = np.sqrt(np.einsum("ij,ij->i", vectors, vectors))
        ones = np.ones_like(norms)
        return np.divide(1.0, norms, out=ones, where=norms != 0).astype(np.float32)

    return inverse_norms.get(vectors, "inverse-norms", compute)


_HALF_SCAN = "half-scan"
_copying: set[int] = set()  # ids of the vectors whose copy is being made
_copying_lock = threading.Lock()
_copier: concurrent.futures.ThreadPoolExecutor | None = None


def half_scan(vectors: np.ndarray) -> HalfPrecisionScan | None:
    """``vectors``' float16 copy for exact scans (``milvus_lite_half``), or None until it is
    made: the first search of a segment asks for it, and one background thread makes it (~0.1
    s at 68k rows of 384 dims, far more on a busy machine), so no search waits for it. None, and no
    copy made, while it would not fit beside those kept: made, it would be dropped (or drop
    another) and made again at the next search."""
    global _copier
    kept = half_scans.peek(vectors, _HALF_SCAN)
    if kept is not None:
        return kept  # type: ignore[no-any-return]
    if not half_scans.fits(HalfPrecisionScan.size_of(vectors)):
        return None
    with _copying_lock:
        if id(vectors) in _copying:
            return None
        _copying.add(id(vectors))
        if _copier is None:
            _copier = concurrent.futures.ThreadPoolExecutor(1, "lite-half-scan")
        copier = _copier

    def make() -> None:
        import faiss

        faiss.omp_set_num_threads(1)  # this thread's: the copy takes one core, not every one
        try:
            half_scans.get(
                vectors, _HALF_SCAN, lambda: HalfPrecisionScan(vectors, inverse_norm(vectors))
            )
        finally:
            with _copying_lock:
                _copying.discard(id(vectors))

    copier.submit(make)
    return None


def drop_half_scan(vectors: np.ndarray) -> None:
    """Forget ``vectors``' float16 copy: their segment has its graph now."""
    half_scans.discard(vectors, _HALF_SCAN)


# ── which rows are the newest version of their pk, per set of segments ───────────────────


@dataclass(frozen=True)
class _SegmentSet:
    ids: tuple[int, ...]
    rows: tuple[dict[Any, int], ...]  # each segment's pk_to_row (identity and pk lookups)
    masks: tuple[np.ndarray, ...]


_sets_lock = threading.Lock()
_sets: list[_SegmentSet] = []


def newest_rows(segments: Sequence[Any]) -> list[np.ndarray]:
    """Per segment: its rows that are the newest version (highest seq) of their pk among
    ``segments``. Read only.

    Derived from the last set computed: only pks that the added or removed segments share with
    another segment are looked at again (a flush adds one small segment; a merge swaps several
    for one), instead of every row of every segment."""
    ids = tuple(id(seg) for seg in segments)
    with _sets_lock:
        for known in reversed(_sets):
            if known.ids == ids and all(
                rows is seg.pk_to_row for rows, seg in zip(known.rows, segments, strict=True)
            ):
                return list(known.masks)
        base = _sets[-1] if _sets else None
    masks = _derive(segments, base)
    computed = _SegmentSet(
        ids,
        tuple(seg.pk_to_row for seg in segments),
        tuple(masks),
    )
    with _sets_lock:
        _sets.append(computed)
        del _sets[:-_SEGMENT_SETS]
    return masks


def _derive(segments: Sequence[Any], base: _SegmentSet | None) -> list[np.ndarray]:
    kept: dict[int, np.ndarray] = {}
    removed: list[dict[Any, int]] = []
    if base is not None:
        current = {id(seg): seg for seg in segments}
        for seg_id, rows, mask in zip(base.ids, base.rows, base.masks, strict=True):
            seg = current.get(seg_id)
            if seg is not None and seg.pk_to_row is rows:
                kept[seg_id] = mask
            else:
                removed.append(rows)
    masks = [
        kept[id(seg)].copy() if id(seg) in kept else np.ones(seg.num_rows, dtype=bool)
        for seg in segments
    ]
    affected: set[Any] = set()
    for i, seg in enumerate(segments):
        if id(seg) in kept:
            continue
        for j, other in enumerate(segments):
            if i != j:  # a dict keys view intersects in C, walking the smaller side
                affected.update(seg.pk_to_row.keys() & other.pk_to_row.keys())
    for rows in removed:
        for seg in segments:
            if id(seg) in kept:
                affected.update(rows.keys() & seg.pk_to_row.keys())
    for pk in affected:
        found = []
        newest = -1
        for i, seg in enumerate(segments):
            row = seg.pk_to_row.get(pk)
            if row is not None:
                seq = int(seg.seqs[row])
                found.append((i, row, seq))
                newest = max(newest, seq)
        for i, row, seq in found:
            masks[i][row] = seq == newest
    return masks


# ── the memtable, vectorised ──────────────────────────────────────────────────────────────

memtable_columns = MemtableColumns(_MEMTABLE_COLUMN_BYTES)

# (the key its masks are kept under, None: not kept; how it is evaluated on a table)
RowFilter = tuple[Hashable | None, Callable[[pa.Table], np.ndarray]]
MemtableSnapshot = tuple[list[Any], np.ndarray, np.ndarray, list[tuple[int, int]], Any]


def _batch_vectors(vector_field: str, batch: pa.RecordBatch) -> np.ndarray | None:
    if vector_field not in batch.schema.names:
        return None
    column = batch.column(vector_field)
    if column.null_count or not pa.types.is_fixed_size_list(column.type):
        return None
    flat = column.flatten().to_numpy(zero_copy_only=False)
    return flat.astype(np.float32, copy=False).reshape(len(column), -1)


def _partitions(batch: pa.RecordBatch) -> np.ndarray:
    return np.asarray(batch.column("_partition").to_pylist(), dtype=object)


def _matching(evaluate: Callable[[pa.Table], np.ndarray], batch: pa.RecordBatch) -> np.ndarray:
    table = pa.Table.from_batches([batch])
    if "_partition" in table.column_names:
        table = table.drop(["_partition"])
    return evaluate(table).astype(bool)


def memtable_snapshot(
    memtable: Any,
    vector_field: str,
    partition_names: list[str] | None,
    row_filter: RowFilter | None,
) -> MemtableSnapshot | None:
    """``MemTable.to_search_snapshot``'s keys, seqs, vectors and row references, with the
    vectors of all batches as one array (lite converts every row's vector to a Python list and
    back), and in place of its table the rows ``row_filter`` matches. None: not applicable."""
    try:
        lock = memtable._lock
        batch_list = memtable._insert_batches
        pk_index = memtable._pk_index
    except AttributeError:
        return None
    with lock:
        batches = tuple(batch_list)
        entries = list(pk_index.items())
    if not batches:
        matches = np.zeros(0, dtype=bool) if row_filter is not None else None
        return [], np.zeros(0, dtype=np.uint64), np.zeros((0, 0), dtype=np.float32), [], matches
    columns = memtable_columns
    vectors = columns.column(
        memtable,
        ("vectors", vector_field),
        batches,
        functools.partial(_batch_vectors, vector_field),
    )
    if vectors is None:
        return None
    partitions = None
    if partition_names is not None:
        partitions = columns.column(memtable, "partitions", batches, _partitions)
        if partitions is None:
            return None
    masks = None
    if row_filter is not None:
        key, evaluate = row_filter
        masks = columns.column(memtable, key, batches, functools.partial(_matching, evaluate))
        if masks is None:
            return None
    wanted = set(partition_names or ())
    starts = vectors.starts
    pks: list[Any] = []
    seqs: list[int] = []
    rows: list[int] = []
    refs: list[tuple[int, int]] = []
    for pk, (batch_index, row, seq) in entries:
        at = starts[batch_index] + row
        if partitions is not None and partitions.values[at] not in wanted:
            continue
        pks.append(pk)
        seqs.append(seq)
        rows.append(at)
        refs.append((batch_index, row))
    if not rows:
        matches = np.zeros(0, dtype=bool) if masks is not None else None
        return [], np.zeros(0, dtype=np.uint64), np.zeros((0, 0), dtype=np.float32), [], matches
    matches = masks.values[rows] if masks is not None else None
    return pks, np.asarray(seqs, dtype=np.uint64), vectors.values[rows], refs, matches


def _lite_snapshot(
    memtable: Any,
    vector_field: str,
    partition_names: list[str] | None,
    row_filter: RowFilter | None,
) -> MemtableSnapshot:
    """The same from lite's own ``to_search_snapshot`` (its table evaluated by ``row_filter``)."""
    pks, seqs, vectors, refs, table = memtable.to_search_snapshot(
        vector_field=vector_field,
        partition_names=partition_names,
        include_table=row_filter is not None,
    )
    matches = row_filter[1](table).astype(bool) if row_filter is not None else None
    return pks, seqs, vectors, refs, matches


@dataclass(frozen=True)
class MemtableView:
    """What a search reads of the memtables, as one: each key's newest row (aligned lists of
    keys, seqs, a vector matrix, row references and, with a filter, whether it matches) and
    each key's newest delete."""

    pks: list[Any]
    seqs: np.ndarray
    vectors: np.ndarray
    refs: list[tuple[Any, Any, int]]  # (memtable, batch, row)
    matches: np.ndarray | None
    deletes: dict[Any, Any]

    def row(self, local: int, only: Collection[str] | None = None) -> dict[str, Any]:
        """A memtable row as lite materializes it, or only the columns ``only`` names."""
        memtable, batch, row = self.refs[local]
        if only is None:
            return memtable.materialize_row(batch, row)  # type: ignore[no-any-return]
        # a batch never changes once appended: read without the memtable's lock
        return arrow_row(memtable._insert_batches[batch], row, only)


def memtables_view(
    memtables: tuple[Any, ...],
    vector_field: str,
    partition_names: list[str] | None,
    row_filter: RowFilter | None,
) -> MemtableView:
    """The memtables a search reads, oldest first (two while a flush moves the older one into a
    segment), as one view; a newer memtable's row or delete hides an older one's row."""
    keys: list[Any] = []
    seqs: list[np.ndarray] = []
    vectors: list[np.ndarray] = []
    refs: list[tuple[Any, Any, int]] = []
    matches: list[np.ndarray] = []
    deletes: dict[Any, Any] = {}
    newer: set[Any] = set()
    for memtable in reversed(memtables):
        snapshot = memtable_snapshot(
            memtable, vector_field, partition_names, row_filter
        ) or _lite_snapshot(memtable, vector_field, partition_names, row_filter)
        pks, mt_seqs, mt_vectors, mt_refs, mt_matches = snapshot
        kept = [i for i, pk in enumerate(pks) if pk not in newer]
        if len(kept) < len(pks):
            pks = [pks[i] for i in kept]
            mt_seqs, mt_vectors = mt_seqs[kept], mt_vectors[kept]
            mt_refs = [mt_refs[i] for i in kept]
            mt_matches = mt_matches[kept] if mt_matches is not None else None
        mt_deletes = memtable.delete_index_snapshot()
        newer.update(pks)
        newer.update(mt_deletes)
        for pk, entry in mt_deletes.items():
            deletes.setdefault(pk, entry)  # newest first
        keys[:0] = pks  # oldest first overall, as one memtable would list them
        seqs.insert(0, mt_seqs)
        if pks:
            vectors.insert(0, mt_vectors)
        refs[:0] = [(memtable, batch, row) for batch, row in mt_refs]
        if mt_matches is not None:
            matches.insert(0, mt_matches)
    return MemtableView(
        pks=keys,
        seqs=np.concatenate(seqs) if len(seqs) > 1 else seqs[0],
        vectors=(np.concatenate(vectors) if len(vectors) > 1 else vectors[0])
        if vectors
        else np.zeros((0, 0), dtype=np.float32),
        refs=refs,
        matches=np.concatenate(matches) if row_filter is not None else None,
        deletes=deletes,
    )


def segment_row(
    seg: Any, row: int, skip: str | None, only: Collection[str] | None = None
) -> dict[str, Any]:
    """``Segment.row_to_dict`` without the column ``skip`` (the vector, when not asked for:
    converting 384 floats to Python was most of a hit's cost), or only the columns ``only``
    names (the key and the asked fields: converting every column took 16% of lite's search
    samples at 5k memories, 7% since)."""
    if skip is None and only is None:
        return seg.row_to_dict(row)  # type: ignore[no-any-return]
    if only is None:
        only = [name for name in seg.table.schema.names if name not in ("_seq", skip)]
    return arrow_row(seg.table, row, only)


def arrow_row(source: Any, row: int, only: Collection[str]) -> dict[str, Any]:
    """Row ``row`` of an Arrow table or record batch as a dict of the columns ``only`` names
    that it has, dynamic fields (``$meta``) unpacked into it as lite does."""
    present = set(source.schema.names)
    record: dict[str, Any] = {
        name: source.column(name)[row].as_py() for name in only if name in present
    }
    meta = record.get("$meta")
    if meta is not None:
        if isinstance(meta, str):
            try:
                meta = json.loads(meta)
            except ValueError:
                meta = None
        if isinstance(meta, dict):
            record.update(meta)
    return record
