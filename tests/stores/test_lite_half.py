"""milvus-lite's cosine HNSW graphs store float16 vectors: they find what a float32 graph finds,
score within float16's precision of exact, survive a save and a load, and leave other metrics'
graphs as lite builds them."""

from __future__ import annotations

import time
from pathlib import Path

import faiss
import numpy as np
import pytest

from somamemory.stores.milvus_lite_half import install_half_precision_graphs
from somamemory.stores.milvus_lite_search import _lite_hnsw_masked

PARAMS = {"M": 16, "efConstruction": 64}


@pytest.fixture(scope="module")
def lite_index() -> type:
    install_half_precision_graphs()
    from milvus_lite.index.faiss_hnsw import FaissHnswIndex

    return FaissHnswIndex


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(4)
    centres = rng.normal(size=(50, 64))
    vectors = centres[rng.integers(0, 50, 4000)] + 0.5 * rng.normal(size=(4000, 64))
    queries = vectors[rng.integers(0, 4000, 40)] + 0.2 * rng.normal(size=(40, 64))
    return vectors.astype(np.float32), queries.astype(np.float32)


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def _recall_and_score_error(index: object, vectors: np.ndarray, queries: np.ndarray) -> tuple:
    ids, dists = index.search(queries, 10, params={"ef": 128})  # type: ignore[attr-defined]
    exact_scores = _unit(queries) @ _unit(vectors).T
    truth = np.argsort(-exact_scores, axis=1)[:, :10]
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, truth, strict=True)])
    error = max(
        float(np.abs((1.0 - dists[q]) - exact_scores[q, ids[q]]).max()) for q in range(len(ids))
    )
    return recall, error


def test_a_cosine_graph_stores_half_precision_and_finds_what_exact_search_finds(
    lite_index: type,
) -> None:
    vectors, queries = _data()
    index = lite_index.build(vectors, "COSINE", PARAMS)
    graph = faiss.downcast_index(index._index)
    assert isinstance(graph, faiss.IndexHNSWSQ)
    assert faiss.downcast_index(graph.storage).sq.qtype == faiss.ScalarQuantizer.QT_fp16
    recall, error = _recall_and_score_error(index, vectors, queries)
    assert recall >= 0.97
    assert error < 2e-3  # a score is the float32 one to float16's precision


def test_a_half_precision_graph_searches_with_a_mask_and_reloads_the_same(
    lite_index: type, tmp_path: Path
) -> None:
    """The executor's masked search (a bitmap) works on it, and lite's save and load keep it."""
    vectors, queries = _data()
    index = lite_index.build(vectors, "COSINE", PARAMS)
    mask = np.random.default_rng(1).random(len(vectors)) < 0.5
    ids, _ = _lite_hnsw_masked(index, queries, 10, mask, {"ef": 128}) or (None, None)
    assert ids is not None and (ids >= 0).all()
    assert mask[ids].all()  # never an excluded row
    index.save(str(tmp_path / "graph"))
    loaded = lite_index.load(str(tmp_path / "graph"), "COSINE", vectors.shape[1])
    assert isinstance(faiss.downcast_index(loaded._index), faiss.IndexHNSWSQ)
    before = index.search(queries, 10, params={"ef": 128})
    after = loaded.search(queries, 10, params={"ef": 128})
    assert before[0].tolist() == after[0].tolist()


@pytest.mark.parametrize("metric", ["L2", "IP"])
def test_other_metrics_keep_lite_s_float32_graph(lite_index: type, metric: str) -> None:
    """Their vectors are not unit length: float16 could lose them (beyond 65,504)."""
    vectors, _ = _data()
    index = lite_index.build(vectors, metric, PARAMS)
    assert isinstance(faiss.downcast_index(index._index), faiss.IndexHNSWFlat)


def test_a_segment_waiting_for_its_graph_is_scanned_in_half_precision_with_exact_answers() -> None:
    """A segment large enough for a graph is searched exactly until lite has built it: through
    its float16 copy once a background thread has made it (the first search does not wait for
    it), the best candidates scored again in float32. Before and after the copy, the answer is
    exact search's (rows, order and distances), with a mask too; the copy is dropped once the
    graph is there."""
    from somamemory.stores import milvus_lite_segments as memo
    from somamemory.stores.milvus_lite_search import HALF_SCAN_MIN_ROWS, _lite_brute_force

    rng = np.random.default_rng(6)
    centres = rng.normal(size=(200, 64))
    vectors = centres[rng.integers(0, 200, HALF_SCAN_MIN_ROWS + 500)]
    vectors = (vectors + 0.4 * rng.normal(size=vectors.shape)).astype(np.float32)
    queries = (vectors[rng.integers(0, len(vectors), 30)] + 0.1).astype(np.float32)
    scores = _unit(queries) @ _unit(vectors).T
    masks = (None, rng.random(len(vectors)) < 0.6)

    def answers_exactly() -> None:
        for mask in masks:
            masked = scores if mask is None else np.where(mask, scores, -np.inf)
            truth = np.argsort(-masked, axis=1, kind="stable")[:, :10]
            ids, dists = _lite_brute_force(queries, vectors, 10, mask, "COSINE") or (None, None)
            assert ids is not None and dists is not None
            assert ids.tolist() == truth.tolist()
            exact = 1.0 - np.take_along_axis(masked, truth, axis=1)
            assert np.allclose(dists, exact, atol=1e-5)

    assert memo.half_scans.peek(vectors, "half-scan") is None
    answers_exactly()  # in float32: the copy is being made meanwhile
    deadline = time.monotonic() + 60
    while memo.half_scans.peek(vectors, "half-scan") is None:
        assert time.monotonic() < deadline, "the float16 copy was never made"
        time.sleep(0.05)
    answers_exactly()  # through the copy
    memo.drop_half_scan(vectors)
    assert memo.half_scans.peek(vectors, "half-scan") is None


def _wait_for_copier() -> None:
    """Until the background thread making float16 copies has nothing queued or running."""
    from somamemory.stores import milvus_lite_segments as memo

    if memo._copier is not None:
        memo._copier.submit(lambda: None).result(timeout=60)


def test_the_largest_segment_lite_makes_gets_its_copy() -> None:
    """Lite's segments hold up to MAX_SEGMENT_ROWS rows; at the default model's 384 dims the
    float16 copy of such a segment is kept (a budget below it made every search of the segment
    copy it again, in vain, and scan it in float32)."""
    from milvus_lite.constants import MAX_SEGMENT_ROWS

    from somamemory.stores import milvus_lite_segments as memo

    vectors = np.random.default_rng(8).random((MAX_SEGMENT_ROWS, 384), dtype=np.float32)
    assert memo.half_scan(vectors) is None  # being made
    _wait_for_copier()
    try:
        assert memo.half_scan(vectors) is not None
    finally:
        memo.drop_half_scan(vectors)


def test_a_copy_that_does_not_fit_is_never_made(monkeypatch: pytest.MonkeyPatch) -> None:
    """A segment whose float16 copy would not fit beside those kept is scanned in float32, with
    the same answers, and no search sets off a copy that could not be kept."""
    from somamemory.stores import milvus_lite_segments as memo
    from somamemory.stores.milvus_lite_search import HALF_SCAN_MIN_ROWS, _lite_brute_force

    made: list[int] = []

    class Counted(memo.HalfPrecisionScan):
        def __init__(self, vectors: np.ndarray, inverse_norms: np.ndarray) -> None:
            made.append(len(vectors))
            super().__init__(vectors, inverse_norms)

    rng = np.random.default_rng(9)
    vectors = rng.normal(size=(HALF_SCAN_MIN_ROWS + 500, 64)).astype(np.float32)
    queries = rng.normal(size=(5, 64)).astype(np.float32)
    budget = vectors.shape[0] * vectors.shape[1] * 2 - 1  # two bytes a value, less one
    monkeypatch.setattr(memo, "half_scans", memo.IdentityMemo(budget))
    monkeypatch.setattr(memo, "HalfPrecisionScan", Counted)
    truth = np.argsort(-(_unit(queries) @ _unit(vectors).T), axis=1, kind="stable")[:, :10]
    for _ in range(5):
        ids, _dists = _lite_brute_force(queries, vectors, 10, None, "COSINE") or (None, None)
        assert ids is not None and ids.tolist() == truth.tolist()
    _wait_for_copier()
    assert made == [] and memo.half_scan(vectors) is None
