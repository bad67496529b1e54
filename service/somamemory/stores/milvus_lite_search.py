"""A faster search executor for milvus-lite 3.2, installed into it when the store opens a local
``.db`` (``SOMA_MILVUS_LITE_FAST_SEARCH``, on by default).

This replaces one function inside a dependency, so it is tied to the milvus-lite versions it was
checked against, falls back to the original whenever its assumptions do not hold, and a test
compares its answers with the original's (tests/stores/test_vector_store.py).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


# ── milvus-lite: a search executor without per-row Python loops ─────────────────────────────
#
# milvus-lite 3.2's ``execute_search_with_index`` walks every stored row in Python on every
# search (a global max-seq dict for upsert dedup, then a per-row tombstone check): ~1 µs a row,
# so ~100 ms per query at 100k vectors while the HNSW search itself takes ~1 ms. This replacement
# returns the same answers: the cross-segment dedup depends only on the (immutable) segments, so
# it is computed once per segment set and cached; per query only the few rows the memtable, its
# deletes and the tombstones name are looked up through each segment's ``pk_to_row``. When those
# are many (or a segment repeats a pk), it defers to the original.

_LITE_VERSIONS = ("3.2.",)
_LITE_MAX_LOOKUP_SHARE = 0.25  # more lookups than this share of the rows: the original is as fast
_lite_lock = threading.Lock()
_lite_original: Callable[..., Any] | None = None
_lite_base_masks: OrderedDict[tuple[int, ...], tuple[tuple[Any, ...], list[np.ndarray]]] = (
    OrderedDict()
)


def _lite_segment_masks(segments: tuple[Any, ...]) -> list[np.ndarray]:
    """Per segment: rows that are the newest version of their pk among ``segments``."""
    key = tuple(id(seg) for seg in segments)
    with _lite_lock:
        hit = _lite_base_masks.get(key)
        if hit is not None:
            _lite_base_masks.move_to_end(key)
            return hit[1]
    if len(segments) == 1:
        masks = [np.ones(segments[0].num_rows, dtype=bool)]
    else:
        newest: dict[Any, int] = {}
        for seg in segments:
            for pk, seq in zip(seg.pks, seg.seqs.tolist(), strict=True):
                if newest.get(pk, -1) < seq:
                    newest[pk] = seq
        masks = [
            np.fromiter(
                (newest[pk] == seq for pk, seq in zip(seg.pks, seg.seqs.tolist(), strict=True)),
                dtype=bool,
                count=seg.num_rows,
            )
            for seg in segments
        ]
    with _lite_lock:  # the entry holds the segments, so their ids cannot be reused meanwhile
        _lite_base_masks[key] = (segments, masks)
        while len(_lite_base_masks) > 8:
            _lite_base_masks.popitem(last=False)
    return masks


# A segment without its index yet (after a flush or a merge, until the background build ends)
# is searched by brute force. milvus-lite's BruteForceIndex copies the whole matrix, normalizes
# the copy and only then multiplies (four passes and ~2x the segment in temporaries per query:
# ~150 ms at 100k x 384, ~240 ms with a mask); here the candidate norms are computed once per
# segment and a query is one matrix-vector product over the segment's own array (~20 ms).
_lite_norms: OrderedDict[int, tuple[np.ndarray, np.ndarray]] = OrderedDict()


def _lite_inverse_norms(vectors: np.ndarray) -> np.ndarray:
    """1/|v| per row of ``vectors`` (1 for zero rows), cached while the array is in use."""
    key = id(vectors)
    with _lite_lock:
        hit = _lite_norms.get(key)
        if hit is not None and hit[0] is vectors:
            _lite_norms.move_to_end(key)
            return hit[1]
    norms = np.sqrt(np.einsum("ij,ij->i", vectors, vectors))
    inverse = np.divide(1.0, norms, out=np.ones_like(norms), where=norms != 0).astype(np.float32)
    with _lite_lock:  # the entry holds the array, so its id cannot be reused meanwhile
        _lite_norms[key] = (vectors, inverse)
        while len(_lite_norms) > 8:
            _lite_norms.popitem(last=False)
    return inverse


def _lite_brute_force(
    queries: np.ndarray, vectors: np.ndarray, top_k: int, mask: np.ndarray | None, metric: str
) -> tuple[np.ndarray, np.ndarray] | None:
    """BruteForceIndex.search's answer for COSINE and IP (None: another metric)."""
    if metric not in ("COSINE", "IP") or vectors.dtype != np.float32 or vectors.ndim != 2:
        return None
    nq, n = int(queries.shape[0]), int(vectors.shape[0])
    ids = np.full((nq, top_k), -1, dtype=np.int64)
    dists = np.full((nq, top_k), np.inf, dtype=np.float32)
    valid = n if mask is None else int(mask.sum())
    if valid == 0:
        return ids, dists
    if metric == "COSINE":
        q_norms = np.linalg.norm(queries, axis=1, keepdims=True)
        unit = queries / np.where(q_norms == 0, 1.0, q_norms)
        scores = (unit @ vectors.T) * _lite_inverse_norms(vectors)
        np.subtract(1.0, scores, out=scores)
        np.maximum(scores, 0.0, out=scores)
    else:
        scores = -(queries @ vectors.T)
    if mask is not None:
        scores[:, ~mask] = np.inf
    k = min(top_k, valid)
    for q in range(nq):
        row = scores[q]
        part = np.argpartition(row, k - 1)[:k] if k < n else np.arange(n)
        order = part[np.argsort(row[part], kind="stable")][:k]
        ids[q, :k] = order
        dists[q, :k] = row[order]
    return ids, dists


def _lite_execute_search(
    query_vectors: np.ndarray,
    segments: Any,
    memtable: Any,
    delta_index: Any,
    top_k: int,
    metric_type: str,
    pk_field: str,
    vector_field: str,
    partition_names: list[str] | None = None,
    compiled_filter: Any = None,
    output_fields: list[str] | None = None,
    indexed_filter_plan: Any = None,
    project_record_fn: Callable[[dict], dict] | None = None,
    search_params: dict[str, Any] | None = None,
) -> list[list[dict]]:
    """``milvus_lite.search.executor_indexed.execute_search_with_index``, same contract."""
    from milvus_lite.index.brute_force import BruteForceIndex
    from milvus_lite.search.filter import evaluate_mask
    from milvus_lite.search.indexed_filter import evaluate_segment_filter

    assert _lite_original is not None
    original_args = (
        query_vectors,
        segments,
        memtable,
        delta_index,
        top_k,
        metric_type,
        pk_field,
        vector_field,
        partition_names,
        compiled_filter,
        output_fields,
        indexed_filter_plan,
        project_record_fn,
        search_params,
    )
    segments = tuple(segments)
    tombstones = getattr(delta_index, "_map", None)
    if query_vectors.ndim == 1:
        query_vectors = query_vectors.reshape(1, -1)
    if query_vectors.dtype != np.float32:
        query_vectors = query_vectors.astype(np.float32, copy=False)
    nq = int(query_vectors.shape[0])
    if nq == 0 or top_k <= 0:
        return [[] for _ in range(nq)]
    in_scope = tuple(
        seg
        for seg in segments
        if seg.num_rows > 0 and (not partition_names or seg.partition in partition_names)
    )
    mt_pks, mt_seqs, mt_vecs, mt_row_refs, mt_table = memtable.to_search_snapshot(
        vector_field=vector_field,
        partition_names=partition_names,
        include_table=compiled_filter is not None,
    )
    if not in_scope and not mt_pks:
        return [[] for _ in range(nq)]
    mt_deletes = memtable.delete_index_snapshot()
    lookups = len(mt_pks) + len(mt_deletes) + len(tombstones or ())
    if (
        not isinstance(tombstones, dict)
        or any(len(seg.pk_to_row) != seg.num_rows for seg in in_scope)
        or lookups * len(in_scope) > _LITE_MAX_LOOKUP_SHARE * sum(s.num_rows for s in in_scope)
    ):
        return _lite_original(*original_args)

    def shadow(mask: np.ndarray, rows: dict[Any, int], seqs: np.ndarray) -> None:
        """Drop rows a newer memtable version, memtable delete or tombstone supersedes."""
        for pk, seq in zip(mt_pks, mt_seqs.tolist(), strict=True):
            row = rows.get(pk)
            if row is not None and seq > int(seqs[row]):
                mask[row] = False
        for pk, entry in mt_deletes.items():
            row = rows.get(pk)
            if row is not None and entry[0] > int(seqs[row]):
                mask[row] = False
        for pk, seq in tombstones.items():
            row = rows.get(pk)
            if row is not None and seq > int(seqs[row]):
                mask[row] = False

    candidates: list[list[tuple[float, int, int]]] = [[] for _ in range(nq)]
    sources: list[list[Any]] = []

    def recall(source: int, vectors: np.ndarray, mask: np.ndarray, index: Any) -> None:
        """Top-k of one source: its index, else (a segment) ours, else lite's brute force."""
        if not mask.any():
            return
        valid_mask = None if mask.all() else mask
        found = None
        if index is None and source < len(in_scope):
            found = _lite_brute_force(query_vectors, vectors, top_k, valid_mask, metric_type)
        if found is None and index is None:  # the memtable: small, and ties break as lite's
            index = BruteForceIndex.build(vectors, metric_type)
        ids, dists = (
            found
            if found is not None
            else index.search(query_vectors, top_k, valid_mask=valid_mask, params=search_params)
        )
        for q in range(nq):
            for j in range(top_k):
                local = int(ids[q, j])
                if local < 0:
                    break
                candidates[q].append((float(dists[q, j]), source, local))

    for seg, base in zip(in_scope, _lite_segment_masks(in_scope), strict=True):
        mask = base.copy()
        shadow(mask, seg.pk_to_row, seg.seqs)
        if compiled_filter is not None:
            mask &= evaluate_segment_filter(seg, compiled_filter, indexed_filter_plan).astype(bool)
        vectors, null_mask = seg.vector_data(vector_field)
        if null_mask is not None:
            mask &= null_mask.astype(bool)
        sources.append(seg.pks)
        recall(len(sources) - 1, vectors, mask, seg.indexes.get(vector_field))

    if mt_pks:
        mask = np.ones(len(mt_pks), dtype=bool)
        for i, (pk, seq) in enumerate(zip(mt_pks, mt_seqs.tolist(), strict=True)):
            newer_in_segment = any(
                (row := seg.pk_to_row.get(pk)) is not None and int(seg.seqs[row]) > seq
                for seg in in_scope
            )
            deleted = mt_deletes.get(pk)
            if (
                newer_in_segment
                or tombstones.get(pk, -1) > seq
                or (deleted is not None and deleted[0] > seq)
            ):
                mask[i] = False
        if mt_table is not None and compiled_filter is not None:
            mask &= evaluate_mask(compiled_filter, mt_table).astype(bool)
        sources.append(mt_pks)
        recall(len(sources) - 1, mt_vecs, mask, None)

    if project_record_fn is not None:
        project = project_record_fn
    elif output_fields is None:

        def project(record: dict) -> dict:
            return {k: v for k, v in record.items() if k not in (pk_field, vector_field)}

    else:
        keep = set(output_fields) - {pk_field}

        def project(record: dict) -> dict:
            return {k: record[k] for k in keep if k in record}

    results: list[list[dict]] = []
    for per_query in candidates:
        per_query.sort()
        hits = []
        for dist, source, local in per_query[:top_k]:
            if source < len(in_scope):
                record = in_scope[source].row_to_dict(local)
            else:
                record = memtable.materialize_row(*mt_row_refs[local])
            pk = record[pk_field] if pk_field in record else sources[source][local]
            hits.append({"id": pk, "distance": dist, "entity": project(record)})
        results.append(hits)
    return results


def install_fast_search() -> None:
    """Install ``_lite_execute_search`` into milvus-lite's collection module (once)."""
    global _lite_original
    try:
        import milvus_lite
        from milvus_lite.engine import collection
    except ImportError:
        return
    with _lite_lock:
        if _lite_original is not None:
            return
        current = getattr(collection, "execute_search_with_index", None)
        if not str(milvus_lite.__version__).startswith(_LITE_VERSIONS) or current is None:
            log.warning(
                "milvus-lite %s: keeping its own search executor (slow above ~10k vectors)",
                milvus_lite.__version__,
            )
            return
        _lite_original = current
        collection.execute_search_with_index = _lite_execute_search
