"""What a search pays for milvus-lite's memtable: the rows written since the last flush.

Under steady writes the memtable holds a second of group commits, each upsert one Arrow record
batch of a few rows. The search executor reads every batch's vectors and filter mask; they are
converted once per batch and kept while the batch lives. This writes ``--batches`` upserts of
``--rows`` 384-dim rows without a flush, then times the store's search (the namespace filter,
as every service search has) with that cache on, and with it off (every batch converted again
on every search: a little more work than before the cache, when one table of all batches was
filtered), alternating the two over ``--rounds`` rounds.

    python bench/lite_memtable.py [--batches 80] [--rows 3] [--searches 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from somamemory.filters import parse_filter
from somamemory.models import Memory
from somamemory.stores import milvus_lite_columns, milvus_lite_segments
from somamemory.stores.milvus import MilvusVectorStore

DIM = 384


async def _search_ms(store: MilvusVectorStore, queries: np.ndarray) -> float:
    where = parse_filter("bench")
    assert where is not None
    started = time.perf_counter()
    for query in queries:
        await store.search(query.tolist(), top_k=10, where=where)
    return (time.perf_counter() - started) / len(queries) * 1000


async def main(args: argparse.Namespace) -> None:
    rng = np.random.default_rng(3)
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as tmp:
        store = MilvusVectorStore.connect(
            str(Path(tmp) / "v.db"), collection="memtable", dim=DIM, token=None, timeout=10
        )
        for b in range(args.batches):
            vectors = rng.normal(size=(args.rows, DIM)).astype(np.float32)
            await store.upsert(
                [
                    (Memory("bench", f"{b}.{i}", "episodic", {"i": i}, 0.0, 1, now, now), v)
                    for i, v in enumerate(vectors.tolist())
                ]
            )
        queries = rng.normal(size=(args.searches, DIM)).astype(np.float32)
        await _search_ms(store, queries[:20])  # warm-up
        kept = milvus_lite_segments.memtable_columns
        off = milvus_lite_columns.MemtableColumns(-1)  # keeps nothing
        times: dict[str, list[float]] = {"cache on": [], "cache off": []}
        for _ in range(args.rounds):
            for mode, columns in (("cache off", off), ("cache on", kept)):
                milvus_lite_segments.memtable_columns = columns
                times[mode].append(await _search_ms(store, queries))
        milvus_lite_segments.memtable_columns = kept
        await store.close()
    rows = args.batches * args.rows
    print(f"\nmemtable of {args.batches} batches, {rows} rows; {args.searches} searches a round\n")
    rounds = " | ".join(f"round {i + 1}" for i in range(args.rounds))
    print(f"| search over the memtable | {rounds} | median |")
    print("|---|" + "---|" * args.rounds + "---|")
    for mode, runs in times.items():
        cells = " | ".join(f"{t:.2f}" for t in runs)
        print(f"| {mode} (ms a search) | {cells} | median {statistics.median(runs):.2f} |")
    on, off_ms = statistics.median(times["cache on"]), statistics.median(times["cache off"])
    print(f"\non / off: {on / off_ms:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=80)
    parser.add_argument("--rows", type=int, default=3)
    parser.add_argument("--searches", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    asyncio.run(main(parser.parse_args()))
