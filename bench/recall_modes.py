"""Recall@10 and MRR of the three search modes (vector, keyword, hybrid) on a labelled set.

``python bench/recall_modes.py`` generates the set (``bench/recall_set.py``: 1,200 memories,
229 queries, seed 11), stores it through ``POST /memories/batch`` into ``somamemory serve`` on a
fresh PostgreSQL database with the bundled local model (all-MiniLM-L6-v2 on onnxruntime) and
milvus-lite, waits until every vector is indexed, then asks every query in every mode with
``top_k=10`` and prints a Markdown table: recall@10 (the right memory is among the ten) and MRR
(the mean of 1/rank of the right memory, 0 beyond ten), per kind of query and overall.

A quality measure, not a timing one: it runs on a busy machine as well as on a quiet one.
``--explore`` also scores fusion variants offline (other RRF ``k``) from each mode's lists.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx
from harness import TOKEN, drop_database, migrated_database, serving
from recall_set import RecallSet, build

MODES = ("vector", "keyword", "hybrid")
KINDS = ("exact", "paraphrase", "all")
HEADERS = {"Authorization": f"Bearer {TOKEN}", "X-Soma-Namespace": "recall"}


def _load(client: httpx.Client, recall_set: RecallSet) -> None:
    items = [
        {"coord": str(i), "payload": {"text": text}} for i, text in enumerate(recall_set.memories)
    ]
    for start in range(0, len(items), 100):
        response = client.post(
            "/memories/batch", json={"items": items[start : start + 100]}, headers=HEADERS
        )
        response.raise_for_status()
        assert response.json()["failed"] == 0, response.text
    deadline = time.monotonic() + 600
    while client.get("/stats", headers=HEADERS).json()["vector_count"] != len(items):
        if time.monotonic() > deadline:
            raise SystemExit("vectors were not all indexed within 10 minutes")
        time.sleep(1)


def _ranked(client: httpx.Client, query: str, mode: str, top_k: int) -> list[str]:
    response = client.post(
        "/memories/search",
        json={"query": query, "mode": mode, "top_k": top_k},
        headers=HEADERS,
    )
    response.raise_for_status()
    body = response.json()
    assert body["mode"] == mode, body
    return [hit["coord"] for hit in body["memories"]]


def _coord(index: int) -> str:
    return f"{index}.0"


def _scores(
    recall_set: RecallSet, ranking: Callable[[int], Sequence[str]], top_k: int
) -> dict[str, tuple[float, float]]:
    """recall@top_k and MRR per kind of query (and 'all')."""
    found: dict[str, list[float]] = defaultdict(list)
    reciprocal: dict[str, list[float]] = defaultdict(list)
    for number, query in enumerate(recall_set.queries):
        ranked = list(ranking(number))[:top_k]
        answer = _coord(query.answer)
        rank = ranked.index(answer) + 1 if answer in ranked else None
        for kind in (query.kind, "all"):
            found[kind].append(1.0 if rank else 0.0)
            reciprocal[kind].append(1.0 / rank if rank else 0.0)
    return {
        kind: (sum(found[kind]) / len(found[kind]), sum(reciprocal[kind]) / len(found[kind]))
        for kind in KINDS
    }


def _rrf(lists: Sequence[Sequence[str]], k: int) -> list[str]:
    score: dict[str, float] = defaultdict(float)
    best: dict[str, int] = {}
    for ranked in lists:
        for rank, coord in enumerate(ranked, start=1):
            score[coord] += 1.0 / (k + rank)
            best[coord] = min(best.get(coord, rank), rank)
    return sorted(score, key=lambda coord: (-score[coord], best[coord], coord))


def _table(rows: dict[str, dict[str, tuple[float, float]]], counts: dict[str, int]) -> str:
    head = " | ".join(f"{kind} ({counts[kind]}) recall@10 / MRR" for kind in KINDS)
    lines = [f"| mode | {head} |", "|---|" + "---|" * len(KINDS)]
    for mode, scores in rows.items():
        cells = " | ".join(f"{scores[kind][0]:.3f} / {scores[kind][1]:.3f}" for kind in KINDS)
        lines.append(f"| {mode} | {cells} |")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> None:
    recall_set = build(seed=args.seed, memories=args.memories, exact_queries=args.exact)
    counts = {kind: sum(q.kind == kind for q in recall_set.queries) for kind in KINDS[:2]}
    counts["all"] = len(recall_set.queries)
    print(f"{len(recall_set.memories)} memories, {counts['all']} queries ({counts})")
    database = asyncio.run(migrated_database())
    try:
        with (
            tempfile.TemporaryDirectory() as data_dir,
            serving(
                Path(data_dir), {"POSTGRES_URL": database, "SOMA_FORCE_HASH_EMBEDDINGS": "0"}
            ) as url,
            httpx.Client(base_url=url, timeout=60) as client,
        ):
            health = client.get("/health", headers=HEADERS).json()
            print(f"embedder: {health['embedder']}")
            _load(client, recall_set)
            depth = args.depth if args.explore else args.top_k
            lists = {
                mode: [_ranked(client, q.text, mode, depth) for q in recall_set.queries]
                for mode in MODES
            }
    finally:
        asyncio.run(drop_database(database))
    rows = {
        mode: _scores(recall_set, lambda n, mode=mode: lists[mode][n], args.top_k) for mode in MODES
    }
    if args.explore:
        for k in (1, 10, 30, 60, 100):
            rows[f"rrf k={k} (offline)"] = _scores(
                recall_set,
                lambda n, k=k: _rrf([lists["vector"][n], lists["keyword"][n]], k),
                args.top_k,
            )
    print(_table(rows, counts))
    if args.misses:
        for mode in args.misses:
            for number, query in enumerate(recall_set.queries):
                ranked = lists[mode][number][: args.top_k]
                if ranked[:1] != [_coord(query.answer)]:
                    answer = recall_set.memories[query.answer]
                    print(f"{mode} miss ({query.kind}): {query.text!r} -> {answer!r}: {ranked[:3]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--memories", type=int, default=1200)
    parser.add_argument("--exact", type=int, default=120, help="exact-token queries")
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--explore", action="store_true", help="also score fusion variants")
    parser.add_argument("--depth", type=int, default=50, help="list depth for --explore")
    parser.add_argument(
        "--misses", nargs="*", choices=MODES, help="print the queries these modes answer wrongly"
    )
    run(parser.parse_args())


if __name__ == "__main__":
    main()
