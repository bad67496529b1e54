"""Search quality and latency: Milvus recall@10 against exact brute-force cosine, and p50/p99.

The labelled set is generated here (no download): 384-dim vectors drawn around 2,000 random
centres (clustered, as embeddings are), queries that are perturbed copies of stored vectors, and
for each query the exact top-10 by brute-force cosine (NumPy). The same vectors go into Milvus
through the service's own vector store; recall@10 = |ANN top-10 ∩ exact top-10| / 10.

Then the service itself is started on those memories (PostgreSQL rows written in bulk with COPY)
and ``POST /memories/search`` is timed over HTTP with a ``vector`` body.

    python bench/search_quality.py [--sizes 10000 100000] [--queries 300] [--index HNSW]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import numpy as np

from somamemory.filters import build_filter
from somamemory.models import Memory
from somamemory.stores.milvus import MilvusVectorStore

DIM = 384
NAMESPACE = "bench"
TOKEN = "bench-token"
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"


def dataset(size: int, queries: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(2000, DIM)).astype(np.float32)
    vectors = centres[rng.integers(0, len(centres), size)] + 0.6 * rng.normal(size=(size, DIM))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    picks = vectors[rng.integers(0, size, queries)] + 0.3 * rng.normal(size=(queries, DIM))
    picks = (picks / np.linalg.norm(picks, axis=1, keepdims=True)).astype(np.float32)
    return vectors, picks


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int = 10) -> np.ndarray:
    scores = queries @ vectors.T
    return np.argsort(-scores, axis=1)[:, :k]


def pct(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[int(len(ordered) * 0.99)] * 1000


async def fill_milvus(store: MilvusVectorStore, vectors: np.ndarray) -> float:
    now = datetime.now(UTC)
    started = time.perf_counter()
    for start in range(0, len(vectors), 2000):
        batch = [
            (Memory(NAMESPACE, f"{i}.0", "episodic", {"i": i}, 0.0, 1, now, now), vectors[i])
            for i in range(start, min(start + 2000, len(vectors)))
        ]
        await store.upsert(batch)
    await store.flush()
    return time.perf_counter() - started


async def in_process(store: MilvusVectorStore, queries: np.ndarray) -> tuple[list[list[int]], list[float]]:
    expression = build_filter(NAMESPACE)
    assert expression is not None
    found, times = [], []
    for query in queries:
        started = time.perf_counter()
        hits = await store.search(query.tolist(), top_k=10, expression=expression)
        times.append(time.perf_counter() - started)
        found.append([int(float(coord)) for coord, _ in hits])
    return found, times


async def fill_postgres(url: str, size: int) -> None:
    connection = await asyncpg.connect(url)
    now = datetime.now(UTC)
    rows = [(NAMESPACE, f"{i}.0", "episodic", json.dumps({"i": i}), 0.0, 1, now, now)
            for i in range(size)]
    await connection.copy_records_to_table(
        "memories",
        records=rows,
        columns=["namespace", "coord", "memory_type", "payload", "importance", "version",
                 "created_at", "updated_at"],
    )
    await connection.close()


def over_http(db_url: str, data_dir: Path, collection: str, index: str,
              queries: np.ndarray) -> list[float]:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOMA_", "POSTGRES", "REDIS"))}
    env.update({"SOMA_API_TOKEN": TOKEN, "POSTGRES_URL": db_url, "SOMA_FORCE_HASH_EMBEDDINGS": "1",
                "SOMA_MILVUS_COLLECTION": collection, "SOMA_MILVUS_INDEX": index,
                "SOMA_LOG_LEVEL": "WARNING"})
    process = subprocess.Popen([sys.executable, "-m", "somamemory.cli", "serve", "--port",
                                str(port), "--data-dir", str(data_dir)], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        headers = {"Authorization": f"Bearer {TOKEN}", "X-Soma-Namespace": NAMESPACE}
        times = []
        with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
            for query in queries:
                started = time.perf_counter()
                response = client.post("/memories/search", json={"vector": query.tolist(),
                                                                  "top_k": 10})
                times.append(time.perf_counter() - started)
                response.raise_for_status()
                assert len(response.json()["memories"]) == 10
        return times
    finally:
        process.terminate()
        process.wait()


async def _milvus_phase(
    data_dir: Path, collection: str, index: str, vectors: np.ndarray, queries: np.ndarray
) -> tuple[float, list[list[int]], list[float]]:
    store = MilvusVectorStore.connect(str(data_dir / "milvus.db"), collection=collection,
                                      dim=DIM, token=None, timeout=10, index_type=index)
    fill_seconds = await fill_milvus(store, vectors)
    found, times = await in_process(store, queries)
    await store.close()
    return fill_seconds, found, times


def milvus_phase(*args: object) -> tuple[float, list[list[int]], list[float]]:
    """In a child process: milvus-lite holds its data directory until its process exits."""
    return asyncio.run(_milvus_phase(*args))  # type: ignore[arg-type]


async def run(size: int, queries_n: int, index: str, tmp: Path) -> dict[str, float]:
    vectors, queries = dataset(size, queries_n)
    truth = exact_top(vectors, queries)
    data_dir = tmp / f"data-{size}"
    data_dir.mkdir()
    collection = f"bench_{size}"
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        fill_seconds, found, times = await asyncio.get_running_loop().run_in_executor(
            pool, milvus_phase, data_dir, collection, index, vectors, queries
        )
    recall = float(np.mean([len(set(f) & set(t.tolist())) / 10 for f, t in zip(found, truth)]))
    p50, p99 = pct(times)

    admin = await asyncpg.connect(ADMIN_URL)
    db_name = f"soma_bench_{uuid.uuid4().hex[:8]}"
    await admin.execute(f'CREATE DATABASE "{db_name}"')
    await admin.close()
    db_url = ADMIN_URL.rsplit("/", 1)[0] + f"/{db_name}"
    try:
        subprocess.run([sys.executable, "-m", "somamemory.cli", "migrate"], check=True,
                       capture_output=True, env={**os.environ, "POSTGRES_URL": db_url})
        await fill_postgres(db_url, size)
        http_times = await asyncio.to_thread(over_http, db_url, data_dir, collection, index,
                                             queries)
    finally:
        admin = await asyncpg.connect(ADMIN_URL)
        await admin.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        await admin.close()
    h50, h99 = pct(http_times)
    return {"size": size, "insert_rows_per_s": size / fill_seconds, "recall@10": recall,
            "p50_ms": p50, "p99_ms": p99, "http_p50_ms": h50, "http_p99_ms": h99}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--index", default="HNSW")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            rows.append(asyncio.run(run(size, args.queries, args.index, Path(tmp))))
    print(f"\nindex {args.index}, {DIM}-dim, {args.queries} queries, top-10, COSINE\n")
    print("| memories | insert rows/s | recall@10 | in-process p50/p99 ms | HTTP p50/p99 ms |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['size']:,} | {r['insert_rows_per_s']:,.0f} | {r['recall@10']:.3f} | "
              f"{r['p50_ms']:.1f} / {r['p99_ms']:.1f} | {r['http_p50_ms']:.1f} / {r['http_p99_ms']:.1f} |")


if __name__ == "__main__":
    main()
