"""A faster search executor for milvus-lite 3.2, installed into it when the store opens a local
``.db`` (``SOMA_MILVUS_LITE_FAST_SEARCH``, on by default).

This replaces one function inside a dependency, so it is tied to the milvus-lite versions it was
checked against, falls back to the original whenever its assumptions do not hold, and a test
compares its answers with the original's (tests/stores/test_vector_store.py).
"""

from __future__ import annotations

import concurrent.futures
import functools
import logging
import os
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from somamemory.stores import milvus_lite_segments as segments_memo
from somamemory.stores.milvus_lite_builds import EXACT_SEARCH_MAX_ROWS
from somamemory.stores.milvus_lite_flush import ReadAlone, pinned_memtables, pinned_view_executors
from somamemory.stores.milvus_lite_half import RESCORED, HalfPrecisionScan, row_selector
from somamemory.stores.milvus_lite_patch import patch

log = logging.getLogger(__name__)


# ── milvus-lite: a search executor without per-row Python loops ─────────────────────────────
#
# milvus-lite 3.2's ``execute_search_with_index`` walks every stored row in Python on every
# search (a global max-seq dict for upsert dedup, then a per-row tombstone check): ~1 µs a row,
# so ~100 ms per query at 100k vectors while the HNSW search itself takes ~1 ms. This replacement
# returns the same answers. What depends only on the (immutable) segments is kept between
# searches (``milvus_lite_segments``): which rows are the newest version of their pk, derived
# from the last segment set when a flush or a merge changes it; each segment's filter masks;
# its vector norms. Per query only the few rows the memtable, its deletes and the tombstones
# name are looked up, by intersecting their keys with each segment's ``pk_to_row``. When a
# segment repeats a pk (which lite's writes never make), it defers to the original.

_lite_lock = threading.Lock()
_lite_original: Callable[..., Any] | None = None


# A segment without its index yet (after a flush or a merge, until the background build ends)
# is searched by brute force. milvus-lite's BruteForceIndex copies the whole matrix, normalizes
# the copy and only then multiplies (four passes and ~2x the segment in temporaries per query:
# ~150 ms at 100k x 384, ~240 ms with a mask); here the candidate norms are computed once per
# segment and a query is one matrix-vector product over the segment's own array (~20 ms). A
# segment large enough to get an index (one waiting for it) is scanned in float16 instead, once
# its copy is made (off the search's path), and its best candidates are scored again in float32
# (``milvus_lite_half``).
HALF_SCAN_MIN_ROWS = EXACT_SEARCH_MAX_ROWS


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
        scanned = n >= HALF_SCAN_MIN_ROWS and top_k * RESCORED < valid
        scan = segments_memo.half_scan(vectors) if scanned else None  # asked only when used
        if scan is not None:
            return _rescored(scan, unit, vectors, top_k, mask, ids, dists)
        scores = (unit @ vectors.T) * segments_memo.inverse_norm(vectors)
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


def _rescored(
    scan: HalfPrecisionScan,
    unit: np.ndarray,
    vectors: np.ndarray,
    top_k: int,
    mask: np.ndarray | None,
    ids: np.ndarray,
    dists: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The cosine top-k of a large segment: candidates from its float16 copy, scored again
    from its float32 vectors (``milvus_lite_half``); fills and returns ``ids`` and ``dists``."""
    inverse = segments_memo.inverse_norm(vectors)
    rows = scan.candidates(unit, top_k * RESCORED, mask)
    for q in range(unit.shape[0]):
        found = rows[q][rows[q] >= 0]
        distance = np.maximum(1.0 - (vectors[found] @ unit[q]) * inverse[found], 0.0)
        order = np.argsort(distance, kind="stable")[:top_k]
        ids[q, : len(order)] = found[order]
        dists[q, : len(order)] = distance[order]
    return ids, dists


def _lite_hnsw_masked(
    index: Any,
    queries: np.ndarray,
    top_k: int,
    valid_mask: np.ndarray,
    params: dict[str, Any] | None,
) -> tuple[np.ndarray, np.ndarray] | None:
    """FaissHnswIndex.search's answer with a mask, the mask given to faiss as a bitmap (None:
    not such an index). Lite builds an ``IDSelectorBatch`` (a hash set of every valid row) per
    search: 23 ms at 100k rows, where a bitmap costs 0.6 ms, so one overwritten or deleted
    memory in a big segment made every search of it that much slower."""
    import faiss

    faiss_index: Any = getattr(index, "_index", None)
    metric = getattr(index, "metric", None)
    if (
        type(index).__name__ != "FaissHnswIndex"
        or not hasattr(faiss_index, "hnsw")
        or metric not in ("COSINE", "IP", "L2")
        or valid_mask.shape[0] != faiss_index.ntotal
    ):
        return None
    nq = int(queries.shape[0])
    ids = np.full((nq, top_k), -1, dtype=np.int64)
    dists = np.full((nq, top_k), np.inf, dtype=np.float32)
    if not valid_mask.any():
        return ids, dists
    if metric == "COSINE":
        norms = np.linalg.norm(queries, axis=1, keepdims=True)
        queries = queries / np.where(norms == 0, 1.0, norms)
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    ef = int((params or {}).get("ef", 64))
    selector, bitmap = row_selector(valid_mask)
    found_dists, found_ids = faiss_index.search(
        queries,
        top_k,
        params=faiss.SearchParametersHNSW(sel=selector, efSearch=ef),  # type: ignore[attr-defined]
    )
    keep = (found_ids >= 0) & (found_dists < 1e30)
    if metric == "COSINE":
        converted = 1.0 - found_dists
    elif metric == "IP":
        converted = -found_dists
    else:
        converted = np.sqrt(np.maximum(found_dists, 0.0))
    ids[keep] = found_ids[keep]
    dists[keep] = converted[keep]
    del bitmap
    return ids, dists


Found = tuple[np.ndarray, np.ndarray]  # (ids, distances) per query, best first

# Segments this large are searched on a pool thread while the calling thread searches another
# (faiss and numpy release the GIL): a search over a 78k and a 22k segment at ef 512 costs the
# sum of both on one thread. Smaller ones cost less than the hand-off.
_LITE_PARALLEL_ROWS = 5_000
_lite_pool: concurrent.futures.ThreadPoolExecutor | None = None


def _run_all(searches: list[Callable[[], Found | None]], large: list[bool]) -> list[Found | None]:
    """Each search's answer, in order; the large ones beyond the first on the pool."""
    global _lite_pool
    parallel = [i for i, big in enumerate(large) if big][1:]
    if not parallel:
        return [search() for search in searches]
    with _lite_lock:
        if _lite_pool is None:
            workers = max(1, min(4, (os.cpu_count() or 2) - 1))
            _lite_pool = concurrent.futures.ThreadPoolExecutor(workers, "lite-search")
        pool = _lite_pool
    pending = {i: pool.submit(searches[i]) for i in parallel}
    answers = [None if i in pending else search() for i, search in enumerate(searches)]
    for i, future in pending.items():
        answers[i] = future.result()
    return answers


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
    # the memtables pinned with the segments (two while a flush moves one), else lite's one
    memtables = pinned_memtables() or (memtable,)
    row_filter = None
    if compiled_filter is not None:
        evaluate = functools.partial(evaluate_mask, compiled_filter)
        row_filter = (segments_memo.filter_key(compiled_filter), evaluate)
    view = segments_memo.memtables_view(memtables, vector_field, partition_names, row_filter)
    mt_pks, mt_seqs, mt_vecs = view.pks, view.seqs, view.vectors
    if not in_scope and not mt_pks:
        return [[] for _ in range(nq)]
    mt_deletes = view.deletes
    if not isinstance(tombstones, dict) or any(
        len(seg.pk_to_row) != seg.num_rows for seg in in_scope
    ):
        if len(memtables) > 1:
            raise ReadAlone  # lite's own executor reads one memtable: run once the flush ends
        return _lite_original(*original_args[:2], memtables[0], *original_args[3:])
    # seq of each pk's memtable version, memtable delete and tombstone: the rows they supersede
    # are found by intersecting key sets (in C), so a search costs little more with a full
    # memtable or many tombstones than with none
    mt_seq_of = dict(zip(mt_pks, mt_seqs.tolist(), strict=True))
    deleted_seq_of = {pk: entry[0] for pk, entry in mt_deletes.items()}
    superseding = (mt_seq_of, deleted_seq_of, tombstones)

    def shadow(mask: np.ndarray, rows: dict[Any, int], seqs: np.ndarray) -> None:
        """Drop rows a newer memtable version, memtable delete or tombstone supersedes."""
        for newer in superseding:
            for pk in rows.keys() & newer.keys():
                row = rows[pk]
                if newer[pk] > int(seqs[row]):
                    mask[row] = False

    candidates: list[list[tuple[float, int, int]]] = [[] for _ in range(nq)]
    sources: list[list[Any]] = []

    def top(vectors: np.ndarray, mask: np.ndarray, index: Any, segment: bool) -> Found | None:
        """Top-k of one source: its index, else (a segment) ours, else lite's brute force."""
        if not mask.any():
            return None
        valid_mask = None if mask.all() else mask
        found = None
        if index is None and segment:
            found = _lite_brute_force(query_vectors, vectors, top_k, valid_mask, metric_type)
        elif segment and len(vectors) >= HALF_SCAN_MIN_ROWS:
            segments_memo.drop_half_scan(vectors)  # its graph has come: the copy is not needed
        if found is None and index is None:  # the memtable: small, and ties break as lite's
            index = BruteForceIndex.build(vectors, metric_type)
        if found is None and valid_mask is not None:
            found = _lite_hnsw_masked(index, query_vectors, top_k, valid_mask, search_params)
        if found is None:
            found = index.search(query_vectors, top_k, valid_mask=valid_mask, params=search_params)
        return found

    searches: list[Callable[[], Found | None]] = []
    large: list[bool] = []

    for seg, base in zip(in_scope, segments_memo.newest_rows(in_scope), strict=True):
        mask = base.copy()
        shadow(mask, seg.pk_to_row, seg.seqs)
        if compiled_filter is not None:
            mask &= segments_memo.segment_filter(
                seg,
                compiled_filter,
                functools.partial(
                    evaluate_segment_filter, seg, compiled_filter, indexed_filter_plan
                ),
            )
        vectors, null_mask = seg.vector_data(vector_field)
        if null_mask is not None:
            mask &= null_mask.astype(bool)
        sources.append(seg.pks)
        index = seg.indexes.get(vector_field)
        searches.append(functools.partial(top, vectors, mask, index, True))
        large.append(seg.num_rows >= _LITE_PARALLEL_ROWS)

    if mt_pks:
        mask = np.ones(len(mt_pks), dtype=bool)
        position = {pk: i for i, pk in enumerate(mt_pks)}
        for seg in in_scope:  # a newer version in a segment
            rows, seqs = seg.pk_to_row, seg.seqs
            for pk in rows.keys() & mt_seq_of.keys():
                if int(seqs[rows[pk]]) > mt_seq_of[pk]:
                    mask[position[pk]] = False
        for newer in (tombstones, deleted_seq_of):
            for pk in newer.keys() & mt_seq_of.keys():
                if newer[pk] > mt_seq_of[pk]:
                    mask[position[pk]] = False
        if view.matches is not None:
            mask &= view.matches
        sources.append(mt_pks)
        searches.append(functools.partial(top, mt_vecs, mask, None, False))
        large.append(False)

    for source, found in enumerate(_run_all(searches, large)):
        if found is None:
            continue
        ids, dists = found
        for q in range(nq):
            for j in range(top_k):
                local = int(ids[q, j])
                if local < 0:
                    break
                candidates[q].append((float(dists[q, j]), source, local))

    if project_record_fn is not None:
        project = project_record_fn
    elif output_fields is None:

        def project(record: dict) -> dict:
            return {k: v for k, v in record.items() if k not in (pk_field, vector_field)}

    else:
        keep = set(output_fields) - {pk_field}

        def project(record: dict) -> dict:
            return {k: record[k] for k in keep if k in record}

    # a hit's vector is converted to Python only when asked for; with named output fields only
    # the key and those fields are (and the dynamic fields, which may hold one of them)
    asked = output_fields is None or "*" in output_fields or vector_field in output_fields
    unasked = None if asked else vector_field
    only = None
    if output_fields is not None and "*" not in output_fields:
        only = {pk_field, "$meta", *output_fields}
    results: list[list[dict]] = []
    for per_query in candidates:
        per_query.sort()
        hits = []
        for dist, source, local in per_query[:top_k]:
            if source < len(in_scope):
                record = segments_memo.segment_row(in_scope[source], local, unasked, only)
            else:
                record = view.row(local, only)
            pk = record[pk_field] if pk_field in record else sources[source][local]
            hits.append({"id": pk, "distance": dist, "entity": project(record)})
        results.append(hits)
    return results


def install_fast_search() -> None:
    """Install ``_lite_execute_search`` into milvus-lite's collection module (once)."""
    global _lite_original
    try:
        from milvus_lite.engine import collection
    except ImportError:
        return
    original = patch(
        collection,
        "execute_search_with_index",
        lambda _original: _lite_execute_search,
        otherwise="keeping its own search executor (slow above ~10k vectors)",
    )
    if original is not None:
        _lite_original = original
        pinned_view_executors.add(_lite_execute_search)
