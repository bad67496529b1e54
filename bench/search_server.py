"""Search right after writes on milvus-lite and on a Milvus 2.3.5 standalone server, one run.

For each backend ``somamemory serve`` starts on the embedded PostgreSQL and in-process cache with
hash embeddings (as the other benches); its vectors go to milvus-lite (the default) or to a
Milvus standalone (``SOMA_MILVUS_URI``) started here from a venv that has ``milvus==2.3.5``.
``--memories`` memories (the texts of bench/recall_set.py) are written with
``POST /memories/batch``, and right after the writes ``POST /memories/search`` runs with that
set's questions at ``--concurrency`` for ``--seconds`` per case: ``vector`` mode, then the
default (``hybrid``), at the default consistency (``session``), then both again with
``consistency: strong`` per request. Then read-your-writes: ``--tries`` times a
``POST /memories`` of a new text and at once a vector search for that exact text (top 1), at
``session``, ``eventually`` and ``strong``; a try counts when the new memory is the hit.

Milvus binds 0.0.0.0, so it is started only in a loopback-only network namespace, which also
keeps the machine's PostgreSQL out of reach (hence the embedded one, for both backends). Run it
as root with scripts/bench-search-server.sh, which installs the venv and enters the namespace.

    PYTHONPATH=. python bench/search_server.py --milvus-python VENV/bin/python
        [--memories 5000] [--concurrency 8] [--seconds 20] [--tries 50]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
from harness import percentiles, serving
from recall_set import build
from throughput import HEADERS, bulk_posts

from tests.standalone.milvus_standalone import MilvusStandalone, only_loopback

LEVELS = ("session", "eventually", "strong")


async def search_load(
    url: str, body_of: dict[str, object], queries: list[str], concurrency: int, seconds: float
) -> dict[str, float]:
    """``concurrency`` clients sending searches back to back for ``seconds``: rate, p50, p99,
    and how many answers held fewer than 10 memories (none should, over thousands)."""
    times: list[float] = []
    short = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(url, headers=HEADERS, connector=connector) as session:
        started = time.perf_counter()
        deadline = started + seconds

        async def client(seed: int) -> None:
            nonlocal short
            rng = random.Random(seed)
            while time.perf_counter() < deadline:
                body = {**body_of, "query": rng.choice(queries), "top_k": 10}
                sent = time.perf_counter()
                async with session.post("/memories/search", json=body) as response:
                    response.raise_for_status()
                    short += len((await response.json())["memories"]) < 10
                times.append(time.perf_counter() - sent)

        await asyncio.gather(*(client(seed) for seed in range(concurrency)))
        elapsed = time.perf_counter() - started
    p50, p99 = percentiles(times)
    return {"rate": len(times) / elapsed, "p50": p50, "p99": p99, "n": len(times), "short": short}


async def read_your_writes(url: str, tries: int) -> dict[str, str]:
    """Per level: how often a search right after a write finds it, of ``tries``."""
    found: dict[str, str] = {}
    async with aiohttp.ClientSession(url, headers=HEADERS) as session:
        for number, level in enumerate(LEVELS):
            hits = unindexed = 0
            for i in range(tries):
                text = f"probe {uuid.uuid4().hex}: the {level} check of write number {i}"
                body = {"coord": f"{i},{number},7", "payload": {"text": text}}
                async with session.post("/memories", json=body) as response:
                    response.raise_for_status()
                    written = await response.json()
                unindexed += not written["indexed"]
                query = {"query": text, "mode": "vector", "top_k": 1, "consistency": level}
                async with session.post("/memories/search", json=query) as response:
                    response.raise_for_status()
                    memories = (await response.json())["memories"]
                hits += bool(memories) and memories[0]["coord"] == written["coord"]
            note = f" ({unindexed} acknowledged unindexed)" if unindexed else ""
            found[level] = f"{hits}/{tries}{note}"
    return found


Cases = dict[str, dict[str, float]]


async def measure(url: str, args: argparse.Namespace) -> tuple[Cases, dict[str, str]]:
    """Write the memories, then the search cases, then read-your-writes."""
    recall_set = build(memories=args.memories, exact_queries=args.memories // 10)
    started = time.perf_counter()
    await bulk_posts(url, args.memories, 500, texts=recall_set.memories)
    written = time.perf_counter() - started
    print(f"  {args.memories} memories written in {written:.1f} s", flush=True)
    queries = [query.text for query in recall_set.queries]
    cases: Cases = {}
    for consistency in ("session", "strong"):
        for mode in ("vector", "hybrid"):
            body: dict[str, object] = {"mode": mode} if mode == "vector" else {}
            if consistency != "session":
                body["consistency"] = consistency
            name = f"{mode}, {consistency}"
            cases[name] = await search_load(url, body, queries, args.concurrency, args.seconds)
            result = cases[name]
            print(
                f"  {name}: {result['rate']:.1f}/s, p50 {result['p50']:.1f} ms, "
                f"p99 {result['p99']:.1f} ms ({result['n']:.0f} searches, "
                f"{result['short']:.0f} with fewer than 10 hits; "
                f"load {os.getloadavg()[0]:.1f})",
                flush=True,
            )
    found = await read_your_writes(url, args.tries)
    print(f"  read-your-writes: {found}", flush=True)
    return cases, found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--milvus-python", required=True, help="a python that has milvus==2.3.5")
    parser.add_argument("--memories", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--tries", type=int, default=50)
    args = parser.parse_args()
    if not only_loopback():
        raise SystemExit("Milvus binds 0.0.0.0: run this in a loopback-only namespace (unshare -n)")

    results: dict[str, tuple[Cases, dict[str, str]]] = {}
    loads: list[float] = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp:
        print("milvus-lite (embedded)", flush=True)
        with serving(Path(tmp) / "lite", {}) as url:
            results["milvus-lite"] = asyncio.run(measure(url, args))
        loads.append(os.getloadavg()[0])

        print("Milvus 2.3.5 standalone", flush=True)
        server = MilvusStandalone(args.milvus_python, Path(tmp) / "standalone").start(timeout=300)
        try:
            env = {"SOMA_MILVUS_URI": server.uri}
            with serving(Path(tmp) / "server", env) as url:
                results["Milvus 2.3.5"] = asyncio.run(measure(url, args))
        finally:
            server.stop()
        loads.append(os.getloadavg()[0])

    lite, milvus = results["milvus-lite"][0], results["Milvus 2.3.5"][0]
    print(
        f"\n{args.memories:,} memories, searches at concurrency {args.concurrency} for "
        f"{args.seconds:.0f} s per case, top_k 10, load average "
        + " / ".join(f"{load:.1f}" for load in loads)
        + " (start / after lite / after server)\n"
    )
    print(
        "| search | milvus-lite /s | p50 / p99 ms | Milvus 2.3.5 /s | p50 / p99 ms | server/lite |"
    )
    print("|---|---|---|---|---|---|")
    for name, a in lite.items():
        b = milvus[name]
        print(
            f"| {name} | {a['rate']:.1f} | {a['p50']:.0f} / {a['p99']:.0f} | {b['rate']:.1f} | "
            f"{b['p50']:.0f} / {b['p99']:.0f} | {b['rate'] / a['rate']:.2f} |"
        )
    print("\nread-your-writes (a vector search for a memory's text right after its POST)\n")
    print("| backend | " + " | ".join(LEVELS) + " |\n|---|" + "---|" * len(LEVELS))
    for name, (_, ryw) in results.items():
        print(f"| {name} | " + " | ".join(ryw[level] for level in LEVELS) + " |")


if __name__ == "__main__":
    main()
