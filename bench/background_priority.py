"""Searches beside a background index build: how much the build's CPU policy lets through.

milvus-lite's background thread (merges, index builds) runs beside the searches of the same
process. This times HNSW searches (two float16 graphs of 60k + 40k, 384 dims, ef 576, searched
on two threads as the store's executor does) while a thread builds float16 HNSW graphs over and
over, with that thread left as it is ("none" in the table is no build at all), at nice 19 (what
``milvus_lite_builds`` sets), or at nice 19 under ``SCHED_IDLE`` (which a waking thread preempts
at once), alternating, one round each per pass.

    python bench/background_priority.py [--seconds 8] [--passes 2]
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import faiss
import numpy as np

DIM = 384
POLICIES = ("none", "default", "nice 19", "nice 19 + SCHED_IDLE")


def _unit(rng: np.random.Generator, rows: int) -> np.ndarray:
    vectors = rng.normal(size=(rows, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _empty_graph() -> Any:
    """A cosine (unit vectors, inner product) HNSW graph storing float16, as lite's mended."""
    fp16 = faiss.ScalarQuantizer.QT_fp16
    return faiss.IndexHNSWSQ(DIM, fp16, 16, faiss.METRIC_INNER_PRODUCT)  # type: ignore[arg-type]


def _graph(vectors: np.ndarray) -> Any:
    graph = _empty_graph()
    graph.hnsw.efConstruction = 100
    graph.add(vectors)
    return graph


def _build_until(stop: threading.Event, policy: str, vectors: np.ndarray) -> None:
    faiss.omp_set_num_threads(1)
    thread = threading.get_native_id()
    if "nice" in policy:
        os.setpriority(os.PRIO_PROCESS, thread, 19)
    if "SCHED_IDLE" in policy:
        os.sched_setscheduler(thread, os.SCHED_IDLE, os.sched_param(0))
    while not stop.is_set():
        graph = _empty_graph()
        for start in range(0, len(vectors), 2000):
            if stop.is_set():
                break
            graph.add(vectors[start : start + 2000])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--passes", type=int, default=2)
    args = parser.parse_args()
    faiss.omp_set_num_threads(1)
    rng = np.random.default_rng(1)
    graphs = [_graph(_unit(rng, rows)) for rows in (60_000, 40_000)]
    for graph in graphs:
        graph.hnsw.efSearch = 576
    queries, rebuilt = _unit(rng, 200), _unit(rng, 60_000)
    pool = ThreadPoolExecutor(len(graphs))
    print("| build thread | searches | p50 ms | p90 ms | p99 ms |\n|---|---|---|---|---|")
    for _ in range(args.passes):
        for policy in POLICIES:
            stop = threading.Event()
            builder = threading.Thread(target=_build_until, args=(stop, policy, rebuilt))
            if policy != "none":
                builder.start()
                time.sleep(1)
            times: list[float] = []
            ends = time.monotonic() + args.seconds
            while time.monotonic() < ends:
                query = queries[len(times) % len(queries)][None, :]
                started = time.perf_counter()
                for future in [pool.submit(graph.search, query, 10) for graph in graphs]:
                    future.result()
                times.append((time.perf_counter() - started) * 1000)
                time.sleep(0.002)  # a client's think time: the build gets the cores meanwhile
            stop.set()
            if builder.is_alive():
                builder.join()
            p50, p90, p99 = np.percentile(times, [50, 90, 99])
            print(f"| {policy} | {len(times)} | {p50:.2f} | {p90:.2f} | {p99:.2f} |", flush=True)


if __name__ == "__main__":
    main()
