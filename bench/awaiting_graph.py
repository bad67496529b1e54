"""Searching a segment that awaits its HNSW graph: latency and the CPU it costs.

Right after a bulk load, lite's merges make segments of up to 100k rows whose graphs take tens of
seconds to build; until then the store's executor searches each exactly (``_lite_brute_force``:
through a float16 copy once a background thread has made it, else in float32). This times that
search alone, one query at a time with 3 ms between queries (a client's think time), over
``--rows`` clustered 384-dim vectors, and reports p50/p99 and the CPU time per search of the
whole process (every thread: the copy's, OpenMP's). Run it with ``OPENBLAS_NUM_THREADS=1``, as
milvus-lite's process runs.

    OPENBLAS_NUM_THREADS=1 python bench/awaiting_graph.py [--rows 96000] [--searches 400]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from somamemory.stores.milvus_lite_search import _lite_brute_force

DIM = 384


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=96_000)
    parser.add_argument("--searches", type=int, default=400)
    args = parser.parse_args()
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(2000, DIM)).astype(np.float32)
    vectors = centres[rng.integers(0, len(centres), args.rows)]
    vectors = vectors + 0.6 * rng.normal(size=vectors.shape).astype(np.float32)
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    queries = vectors[rng.integers(0, args.rows, 200)] + 0.3 * rng.normal(size=(200, DIM))
    queries = queries.astype(np.float32)
    times: list[float] = []
    cpu = time.process_time()
    for i in range(args.searches):
        started = time.perf_counter()
        _lite_brute_force(queries[i % 200 : i % 200 + 1], vectors, 10, None, "COSINE")
        times.append((time.perf_counter() - started) * 1000)
        time.sleep(0.003)
    per_search = (time.process_time() - cpu) / args.searches * 1000
    p50, p99 = np.percentile(times, [50, 99])
    print(
        f"{args.rows:,} x {DIM} awaiting its graph: p50 {p50:.2f} ms, p99 {p99:.2f} ms,"
        f" process CPU {per_search:.2f} ms per search"
    )


if __name__ == "__main__":
    main()
