"""What a search pays for the number of HNSW graphs it walks: the same vectors as one graph, or
split the way milvus-lite's bulk load leaves them (its memtable flushes at 128 MiB, ~78k rows at
384 dims, and the rest becomes a second segment), each graph searched at ``ef`` and the answers
merged, as the store's executor does. faiss alone, one thread, the store's HNSW parameters;
per-query p50 and recall@10 against exact search, and the split graphs' build time. ``--storage``
compares the vectors a graph keeps: float32 (faiss's ``IndexHNSWFlat``, lite's own) and float16
(the store's milvus-lite graphs).

    python bench/segment_layout.py --rows 100000 --split 78000 --ef 512 768
    python bench/segment_layout.py --storage float32 float16 --ef 512 576 640
"""

from __future__ import annotations

import argparse
import time

import faiss
import numpy as np
from search_quality import dataset, exact_top

from somamemory.stores.milvus import _INDEX_PARAMS as INDEX_PARAMS
from somamemory.stores.milvus_lite_half import half_precision_graph


def _graph(vectors: np.ndarray, storage: str = "float32") -> faiss.IndexHNSW:
    params = INDEX_PARAMS["HNSW"]
    if storage == "float16":
        return half_precision_graph(vectors, params["M"], params["efConstruction"])
    index = faiss.IndexHNSWFlat(vectors.shape[1], params["M"], faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = params["efConstruction"]
    index.add(vectors)
    return index


def _search(
    graphs: list[tuple[faiss.IndexHNSW, int]], queries: np.ndarray, ef: int
) -> tuple[float, list[list[int]]]:
    """p50 ms of one query over every graph (answers merged), and the top-10 ids."""
    times, found = [], []
    for graph, _ in graphs:
        graph.hnsw.efSearch = ef
    for query in queries:
        started = time.perf_counter()
        hits: list[tuple[float, int]] = []
        for graph, offset in graphs:
            scores, ids = graph.search(query[None], 10)
            hits += [(s, i + offset) for s, i in zip(scores[0], ids[0], strict=True) if i >= 0]
        hits.sort(reverse=True)
        times.append(time.perf_counter() - started)
        found.append([i for _, i in hits[:10]])
    return float(np.median(times)) * 1000, found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--split", type=int, default=78_000, help="rows in the first segment")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--ef", type=int, nargs="+", default=[512, 768])
    parser.add_argument("--storage", nargs="+", choices=("float32", "float16"), default=["float32"])
    args = parser.parse_args()
    vectors, queries = dataset(args.rows, args.queries)
    truth = exact_top(vectors, queries)
    faiss.omp_set_num_threads(1)
    layouts: dict[str, list[tuple[faiss.IndexHNSW, int]]] = {}
    for storage in args.storage:
        started = time.perf_counter()
        split = [(_graph(vectors[: args.split], storage), 0)]
        split.append((_graph(vectors[args.split :], storage), args.split))
        built = time.perf_counter() - started
        name = f"{storage}, {args.split:,} + {args.rows - args.split:,}"
        print(f"{name}: built in {built:.1f} s", flush=True)
        layouts[name] = split
        layouts[f"{storage}, one graph of {args.rows:,}"] = [(_graph(vectors, storage), 0)]
    for ef in args.ef:
        for name, graphs in layouts.items():
            p50, found = _search(graphs, queries, ef)
            pairs = zip(found, truth, strict=True)
            recall = np.mean([len(set(f) & set(t.tolist())) / 10 for f, t in pairs])
            print(f"ef {ef}, {name}: p50 {p50:.2f} ms, recall@10 {recall:.3f}", flush=True)


if __name__ == "__main__":
    main()
