"""milvus-lite: a partition's indexed segments merged into one graph, indexed before it is read.

A search walks the HNSW graph of every indexed segment and merges the answers, so it pays per
graph: at 100k rows, one graph answers at ef 640 in half the time two graphs (78k + 22k) take at
ef 512, for the same recall (``bench/segment_layout.py``). Lite's size-tiered merges leave a
partition's rows in as many graphs as the way they arrived made: two after a bulk load
flushed once, three (40k + 32k + 28k) after one flushed every 2,000 rows.

So after lite's own merges and index builds (on its background thread, at nice 19: see
``milvus_lite_builds``), the indexed segments of a partition that fit in one segment (lite's
``MAX_SEGMENT_ROWS``) are merged as lite merges (newest version of each key, deleted rows
dropped), and the result's index is built before it replaces its inputs, under the collection's
maintenance lock. Searches read the indexed inputs until then; none searches the merged rows
unindexed. Rows written or deleted meanwhile are newer than the merge's: the memtable, later
segments and the delete marks keep hiding or superseding them, as after any merge. A crash
before the swap leaves a data file no manifest names, which lite's recovery removes.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from collections.abc import Callable
from typing import Any

from . import milvus_lite_builds
from .milvus_lite_patch import patch

log = logging.getLogger(__name__)


def _mergeable(collection: Any, field: str) -> dict[str, list[tuple[str, Any]]]:
    """Per partition, the (file, segment) pairs to merge: its segments with their vector index,
    smallest first, as many as fit in one segment, when that is two or more."""
    from milvus_lite.constants import MAX_SEGMENT_ROWS

    with collection._maintenance_lock:
        cached = list(collection._segment_cache.items())
    indexed: dict[str, list[tuple[str, Any]]] = {}
    for (partition, rel), seg in cached:
        if seg.num_rows >= milvus_lite_builds.EXACT_SEARCH_MAX_ROWS and field in seg.indexes:
            indexed.setdefault(partition, []).append((rel, seg))
    chosen = {}
    for partition, pairs in indexed.items():
        pairs.sort(key=lambda pair: pair[1].num_rows)
        picked, rows = [], 0
        for rel, seg in pairs:
            if rows + seg.num_rows > MAX_SEGMENT_ROWS:
                break
            picked.append((rel, seg))
            rows += seg.num_rows
        if len(picked) >= 2:
            chosen[partition] = picked
    return chosen


def _merge(
    collection: Any, partition: str, inputs: list[tuple[str, Any]]
) -> tuple[str, Any] | None:
    """Write the merge of ``inputs`` to a new data file and load it with its indexes built;
    (its file, the segment), or None when no row is left or the collection is closing."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from milvus_lite.storage.data_file import write_data_file
    from milvus_lite.storage.segment import Segment

    compactor = collection._compaction_mgr
    partition_dir = os.path.join(collection._data_dir, "partitions", partition)
    merged = pa.concat_tables([seg.table for _, seg in inputs])
    merged = compactor._filter_deleted(compactor._dedup_max_seq(merged), collection._delta_index)
    if merged.num_rows == 0:
        return None
    merged = merged.take(pc.sort_indices(merged, sort_keys=[("_seq", "ascending")]))
    seqs = merged.column("_seq")
    seq_min, seq_max = compactor._pick_unique_seq_range(
        partition_dir, int(pc.min(seqs).as_py()), int(pc.max(seqs).as_py())
    )
    rel = write_data_file(merged, partition_dir, seq_min=seq_min, seq_max=seq_max)
    segment = Segment.load(
        file_path=os.path.join(partition_dir, rel),
        partition=partition,
        pk_field=collection._pk_name,
        vector_field=collection._vector_name,
    )
    if not getattr(collection, "_bg_closed", False):  # closing: no build to wait for
        for spec in tuple(collection._index_specs.values()):
            collection._build_or_load_segment_index(segment, spec)
        return rel, segment
    os.remove(segment.file_path)
    return None


def _swap(
    collection: Any, partition: str, inputs: list[tuple[str, Any]], rel: str, seg: Any
) -> bool:
    """Replace ``inputs`` with the merged segment (False: they changed meanwhile; nothing done)."""
    from milvus_lite.storage.snapshots import snapshot_references

    manifest = collection._manifest
    old = [name for name, _ in inputs]
    with collection._maintenance_lock:
        if not set(old) <= set(manifest.get_data_files(partition)):
            return False
        manifest.remove_data_files(partition, old)
        manifest.add_data_file(partition, rel)
        manifest.save()
        collection._segment_cache[(partition, rel)] = seg  # published with its index
        collection._refresh_segment_cache()
        collection._cleanup_orphan_index_files()
        pinned = snapshot_references(collection._data_dir)[0].get(partition, set())
        partition_dir = os.path.join(collection._data_dir, "partitions", partition)
        for name in old:
            if name not in pinned:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(os.path.join(partition_dir, name))
        collection._compaction_mgr._gc_tombstones(manifest, collection._delta_index)
    return True


def consolidate(collection: Any) -> int:
    """Merge each partition's indexed segments into one where they fit; how many merges."""
    if collection._load_state != "loaded":
        return 0
    fields = [
        spec.field_name
        for spec in collection._index_specs.values()
        if spec.index_type in ("HNSW", "HNSW_SQ")
    ]
    if len(fields) != 1:
        return 0
    done = 0
    for partition, inputs in _mergeable(collection, fields[0]).items():
        if getattr(collection, "_bg_closed", False):
            break  # the collection is closing and waits for this thread
        merged = _merge(collection, partition, inputs)
        if merged is None:
            continue
        rel, seg = merged
        if _swap(collection, partition, inputs, rel, seg):
            done += 1
            log.info("merged %d indexed segments of %s into one", len(inputs), partition)
        else:
            path = os.path.join(collection._data_dir, "partitions", partition, rel)
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
    return done


def install_consolidation() -> None:
    """After each of lite's background merge-and-build rounds, consolidate (once)."""
    try:
        from milvus_lite.engine.collection import Collection
    except ImportError:
        return

    def and_consolidate(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def wrapped(self: Any, *args: Any, **kwargs: Any) -> Any:
            result = original(self, *args, **kwargs)
            try:
                consolidate(self)
            except Exception:  # the segments stay as they were: correct, one graph more
                log.exception("merging indexed segments failed; left as they are")
            return result

        return wrapped

    patch(
        Collection,
        "_bg_compact_and_index",
        and_consolidate,
        otherwise="a partition's indexed segments stay apart (a search walks each graph)",
    )
