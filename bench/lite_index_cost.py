"""CPU that milvus-lite spends indexing under a steady write load, the way the store builds indexes
now against faiss's defaults on every core (what milvus-lite did with the store's old parameters).

Writes ``--rows`` 384-dim vectors in upserts of ``--batch`` (like the group-commit batcher),
flushing every ``--flush-every`` rows (the service flushes every second), waits for the background
compaction and index builds to finish, then reports the process CPU seconds per 10k rows, search
p50 and recall@10 against exact search. Each mode runs in its own process.

    python bench/lite_index_cost.py --rows 20000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import psutil

DIM = 384


def _dataset(rows: int, queries: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    centres = rng.normal(size=(2000, DIM)).astype(np.float32)
    vectors = centres[rng.integers(0, len(centres), rows)] + 0.6 * rng.normal(size=(rows, DIM))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    picks = vectors[rng.integers(0, rows, queries)] + 0.3 * rng.normal(size=(queries, DIM))
    return vectors, (picks / np.linalg.norm(picks, axis=1, keepdims=True)).astype(np.float32)


async def _run(mode: str, rows: int, batch: int, flush_every: int, queries: int) -> dict:
    from somamemory.filters import SearchFilter
    from somamemory.models import Memory
    from somamemory.stores import milvus

    if mode == "faiss-defaults":  # the parameters milvus-lite dropped, and every core
        milvus.install_single_thread_builds = lambda: None
        milvus._INDEX_PARAMS["HNSW"] = {}
    vectors, picks = _dataset(rows, queries)
    with tempfile.TemporaryDirectory() as tmp:
        store = milvus.MilvusVectorStore.connect(
            str(Path(tmp) / "v.db"), collection="cost", dim=DIM, token=None, timeout=10
        )
        process = psutil.Process()
        before = sum(process.cpu_times()[:2])
        started = time.monotonic()
        now = datetime.now(UTC)
        for start in range(0, rows, batch):
            items = [
                (Memory("bench", f"{i}", "episodic", {}, 0.0, 1, now, now), vectors[i].tolist())
                for i in range(start, min(start + batch, rows))
            ]
            await store.upsert(items)
            if (start + batch) % flush_every < batch:
                await store.flush()
        await store.flush()
        process.cpu_percent()  # wait until lite's background work is done
        while process.cpu_percent(interval=1.0) > 5:
            pass
        cpu = sum(process.cpu_times()[:2]) - before
        wall = time.monotonic() - started
        where = SearchFilter("bench")
        latencies, found = [], 0
        for query in picks:
            t0 = time.perf_counter()
            hits = await store.search(query.tolist(), top_k=10, where=where)
            latencies.append(time.perf_counter() - t0)
            exact = set(np.argsort(-(vectors @ query))[:10].tolist())
            found += len(exact & {int(coord) for coord, _ in hits})
        await store.close()
    return {
        "mode": mode,
        "cpu_s_per_10k": cpu / rows * 10_000,
        "wall_s": wall,
        "search_p50_ms": float(np.median(latencies) * 1000),
        "recall_at_10": found / (10 * len(picks)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--flush-every", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--mode", choices=("store", "faiss-defaults"))
    args = parser.parse_args()
    if args.mode:
        result = asyncio.run(_run(args.mode, args.rows, args.batch, args.flush_every, args.queries))
        print(json.dumps(result))
        return
    results = []
    for mode in ("faiss-defaults", "store"):
        command = [sys.executable, __file__, "--mode", mode, "--rows", str(args.rows)]
        command += ["--batch", str(args.batch), "--flush-every", str(args.flush_every)]
        command += ["--queries", str(args.queries)]
        out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
    print(f"\n{args.rows:,} rows, upserts of {args.batch}, a flush every {args.flush_every} rows")
    print("| index build | CPU s per 10k rows | search p50 ms | recall@10 |\n|---|---|---|---|")
    for r in results:
        print(
            f"| {r['mode']} | {r['cpu_s_per_10k']:.1f} | {r['search_p50_ms']:.1f} "
            f"| {r['recall_at_10']:.3f} |"
        )
    ratio = results[1]["cpu_s_per_10k"] / results[0]["cpu_s_per_10k"]
    print(f"\nCPU store / faiss-defaults: {ratio:.0%}")


if __name__ == "__main__":
    main()
