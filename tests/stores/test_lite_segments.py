"""The per-segment memo of the milvus-lite search executor: what it derives incrementally
equals what a search computed from scratch would, and what it keeps stays bounded."""

from __future__ import annotations

import gc
import random
from pathlib import Path
from typing import Any

import numpy as np

from somamemory.stores import milvus_lite_segments as memo


class Segment:
    """The part of a milvus-lite segment the memo reads."""

    def __init__(self, pks: list[str], seqs: list[int]) -> None:
        self.pks = pks
        self.seqs = np.asarray(seqs, dtype=np.uint64)
        self.num_rows = len(pks)
        self.pk_to_row = {pk: i for i, pk in enumerate(pks)}


def newest_from_scratch(segments: list[Segment]) -> list[list[bool]]:
    newest: dict[str, int] = {}
    for seg in segments:
        for pk, seq in zip(seg.pks, seg.seqs.tolist(), strict=True):
            newest[pk] = max(newest.get(pk, -1), seq)
    return [
        [newest[pk] == seq for pk, seq in zip(seg.pks, seg.seqs.tolist(), strict=True)]
        for seg in segments
    ]


def test_newest_rows_follow_flushes_and_merges_as_a_full_recount_would() -> None:
    rng = random.Random(5)
    seq = 0
    segments: list[Segment] = []

    def flush(size: int) -> Segment:
        nonlocal seq
        pks = rng.sample([f"m{i}" for i in range(300)], size)  # overwrites of earlier pks
        seqs = list(range(seq + 1, seq + 1 + size))
        seq += size
        return Segment(pks, seqs)

    checked_merges = 0
    for step in range(60):
        if len(segments) >= 3 and step % 4 == 3:  # a merge keeps each pk's newest row
            chosen = rng.sample(segments, rng.randint(2, len(segments)))
            best: dict[str, int] = {}
            for seg in chosen:
                for pk, s in zip(seg.pks, seg.seqs.tolist(), strict=True):
                    best[pk] = max(best.get(pk, -1), s)
            segments = [seg for seg in segments if seg not in chosen]
            segments.append(Segment(list(best), list(best.values())))
            checked_merges += 1
        else:
            segments.append(flush(rng.randint(1, 40)))
        got = [mask.tolist() for mask in memo.newest_rows(segments)]
        assert got == newest_from_scratch(segments), f"step {step}"
        # asked again for the same set: the same answer, reused
        assert [mask.tolist() for mask in memo.newest_rows(segments)] == got
    assert checked_merges >= 10


def test_a_segment_set_seen_before_a_change_is_answered_for_itself() -> None:
    old = Segment(["a", "b"], [1, 2])
    new = Segment(["a"], [3])
    assert [m.tolist() for m in memo.newest_rows([old, new])] == [[False, True], [True]]
    assert [m.tolist() for m in memo.newest_rows([old])] == [[True, True]]
    assert [m.tolist() for m in memo.newest_rows([old, new])] == [[False, True], [True]]


def test_the_memo_keeps_values_only_while_their_owner_lives_and_within_its_budget() -> None:
    kept = memo.IdentityMemo(max_bytes=10_000)
    owners = [np.zeros(10) for _ in range(30)]
    calls = 0

    def value() -> np.ndarray:
        nonlocal calls
        calls += 1
        return np.ones(1000, dtype=bool)  # 1,000 bytes: ten fit

    for owner in owners:
        kept.get(owner, "k", value)
    assert len(kept) == 10 and calls == 30
    kept.get(owners[-1], "k", value)  # the most recent ones are kept
    assert calls == 30
    kept.get(owners[0], "k", value)  # the oldest went first
    assert calls == 31
    del owners, owner
    gc.collect()
    assert len(kept) == 0  # dead owners' entries are gone, not waiting to be pushed out


def test_inverse_norms_do_not_keep_a_dropped_segment_s_vectors_alive() -> None:
    vectors = np.random.default_rng(1).normal(size=(50, 8)).astype(np.float32)
    inverse = memo.inverse_norm(vectors)
    assert np.allclose(inverse, 1 / np.linalg.norm(vectors, axis=1))
    before = len(memo.inverse_norms)
    del vectors
    gc.collect()
    assert len(memo.inverse_norms) == before - 1


def test_a_filter_mask_is_evaluated_once_per_segment_and_filter() -> None:
    class Compiled:
        source = 'namespace == "a"'

    seg: Any = Segment(["a", "b"], [1, 2])
    compiled = Compiled()
    calls = 0

    def evaluate() -> np.ndarray:
        nonlocal calls
        calls += 1
        return np.array([1, 0])

    for _ in range(3):
        assert memo.segment_filter(seg, compiled, evaluate).tolist() == [True, False]
    assert calls == 1
    memo.segment_filter(Segment(["a"], [1]), compiled, evaluate)  # another segment
    assert calls == 2


def test_a_masked_hnsw_search_answers_as_milvus_lite_s_own() -> None:
    """The executor gives faiss the mask as a bitmap (lite builds a hash set of every valid
    row per search); the rows and distances found are the same."""
    from milvus_lite.index.faiss_hnsw import FaissHnswIndex

    from somamemory.stores.milvus_lite_search import _lite_hnsw_masked

    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(2000, 16)).astype(np.float32)
    queries = rng.normal(size=(3, 16)).astype(np.float32)
    for metric in ("COSINE", "IP", "L2"):
        index = FaissHnswIndex.build(vectors, metric, {"M": 8, "efConstruction": 40})
        for kept in (0.97, 0.3, 0.0):
            mask = rng.random(len(vectors)) < kept
            ours = _lite_hnsw_masked(index, queries, 10, mask, {"ef": 64})
            assert ours is not None
            lite = index.search(queries, 10, valid_mask=mask, params={"ef": 64})
            assert ours[0].tolist() == lite[0].tolist(), (metric, kept)
            assert np.allclose(ours[1], lite[1], equal_nan=True), (metric, kept)
            assert mask[ours[0][ours[0] >= 0]].all()  # never an excluded row


async def test_a_flush_gathers_the_memtable_s_live_rows_as_milvus_lite_s_own_code_does(
    tmp_path: Path,
) -> None:
    """Overwritten and deleted rows in the memtable: the columnar gather builds the same
    table (values, types, order) as lite's row-by-row build, vectors included."""
    from datetime import UTC, datetime

    from milvus_lite.storage.memtable import MemTable

    from somamemory.models import Memory
    from somamemory.stores.milvus import MilvusVectorStore
    from somamemory.stores.milvus_lite_memtable import gather_rows

    from .test_vector_store import _lite_collection

    store = MilvusVectorStore.connect(
        str(tmp_path / "v.db"), collection="flush", dim=8, token=None, timeout=5
    )
    try:
        now = datetime.now(UTC)
        rng = np.random.default_rng(2)
        for round_ in range(3):  # three upserts: rows 0-9 overwritten twice
            items = [
                (
                    Memory(
                        ns, f"{i}.0", "episodic", {"i": i, "r": round_}, 0.5, round_ + 1, now, now
                    ),
                    rng.normal(size=8).tolist(),
                )
                for ns in ("a", "b")
                for i in range(round_ * 5, round_ * 5 + 10)
            ]
            await store.upsert(items)
        await store.delete("a", ["3.0", "12.0"])
        memtable = _lite_collection(store)._memtable
        rows = [(b, r) for b, r, _seq in memtable._pk_index.values()]
        assert len(rows) == 2 * 20 - 2
        ours = gather_rows(memtable._insert_batches, rows, memtable._data_schema)
        lite_own = MemTable._build_data_table.__wrapped__(memtable, rows)  # type: ignore[attr-defined]
        assert ours is not None
        assert ours.schema == lite_own.schema
        assert ours.equals(lite_own)
    finally:
        await store.close()
