"""Single-request latency over HTTP: ``POST /memories`` and ``GET /memories/{coord}`` (cache hit).

Starts ``somamemory serve`` as a real process three times: on the embedded default (pgserver,
in-process cache, milvus-lite), on an external PostgreSQL + Redis (milvus-lite for vectors in
both), and on the latter with group commit on (``SOMA_ENABLE_BATCH_UPSERT=1``); sends requests
one at a time over one keep-alive connection and prints p50/p99 in milliseconds. With group
commit on it also times cache hits while another process keeps ``--writers`` clients writing.

    python bench/latency.py [--requests 2000] [--postgres URL] [--redis-host H]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import httpx
from harness import ADMIN_URL, TOKEN, drop_database, migrated_database, percentiles, serving


def _measure(url: str, requests: int) -> dict[str, tuple[float, float]]:
    headers = {"Authorization": f"Bearer {TOKEN}", "X-Soma-Namespace": "bench"}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        writes: list[float] = []
        for i in range(requests):
            body = {"coord": f"{i},{i % 7}", "payload": {"text": f"memory number {i}", "i": i}}
            started = time.perf_counter()
            response = client.post("/memories", json=body)
            writes.append(time.perf_counter() - started)
            response.raise_for_status()
        reads: list[float] = []
        client.get("/memories/1,1").raise_for_status()  # fill the cache
        for _ in range(requests):
            started = time.perf_counter()
            response = client.get("/memories/1,1")
            reads.append(time.perf_counter() - started)
            response.raise_for_status()
    return {
        "POST /memories": percentiles(writes),
        "GET /memories/{coord} (hit)": percentiles(reads),
    }


def _keep_writing(url: str, writers: int, written: Any) -> None:
    """Writers at ``writers`` concurrency until terminated (a process of its own)."""
    headers = {"Authorization": f"Bearer {TOKEN}", "X-Soma-Namespace": "load"}

    async def run() -> None:
        async with aiohttp.ClientSession(url, headers=headers) as session:

            async def writer(n: int) -> None:
                i = 0
                while True:
                    i += 1
                    body = {"coord": f"{n},{i}", "payload": {"text": f"load {i} of {n}"}}
                    async with session.post("/memories", json=body) as response:
                        response.raise_for_status()
                    with written.get_lock():
                        written.value += 1

            await asyncio.gather(*(writer(n) for n in range(writers)))

    asyncio.run(run())


def _hits_under_writes(url: str, requests: int, writers: int) -> tuple[tuple[float, float], float]:
    """Cache-hit latency while another process writes; (p50, p99) and the writes/s meanwhile."""
    written = multiprocessing.Value("l", 0)
    load = multiprocessing.Process(target=_keep_writing, args=(url, writers, written))
    load.start()
    try:
        headers = {"Authorization": f"Bearer {TOKEN}", "X-Soma-Namespace": "bench"}
        with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
            client.get("/memories/1,1").raise_for_status()
            time.sleep(2)  # the writers are up to speed
            start_count, started_at = written.value, time.perf_counter()
            reads: list[float] = []
            for _ in range(requests):
                started = time.perf_counter()
                response = client.get("/memories/1,1")
                reads.append(time.perf_counter() - started)
                response.raise_for_status()
            rate = (written.value - start_count) / (time.perf_counter() - started_at)
    finally:
        load.terminate()
        load.join()
    return percentiles(reads), rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--postgres", default=ADMIN_URL)
    parser.add_argument("--redis-host", default="127.0.0.1")
    parser.add_argument("--writers", type=int, default=16)
    args = parser.parse_args()

    results: dict[str, dict[str, tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        with serving(Path(tmp) / "embedded", {}) as url:
            results["embedded default"] = _measure(url, args.requests)

        database = asyncio.run(migrated_database(args.postgres))
        env = {
            "POSTGRES_URL": database,
            "REDIS_HOST": args.redis_host,
            "SOMA_REDIS_KEY_PREFIX": f"bench-{uuid.uuid4().hex[:6]}",
        }
        try:
            with serving(Path(tmp) / "external", env) as url:
                results["PostgreSQL + Redis"] = _measure(url, args.requests)
            batching = {**env, "SOMA_ENABLE_BATCH_UPSERT": "1"}
            with serving(Path(tmp) / "batching", batching) as url:
                results["PostgreSQL + Redis, batching on"] = _measure(url, args.requests)
                hits, rate = _hits_under_writes(url, args.requests, args.writers)
                under = f"GET /memories/{{coord}} (hit), {args.writers} writers at {rate:,.0f}/s"
                results["PostgreSQL + Redis, batching on"][under] = hits
        finally:
            asyncio.run(drop_database(database, args.postgres))

    print(f"\n{args.requests} sequential requests per row, one keep-alive connection\n")
    print("| backends | request | p50 ms | p99 ms |\n|---|---|---|---|")
    for backends, rows in results.items():
        for request, (p50, p99) in rows.items():
            print(f"| {backends} | {request} | {p50:.2f} | {p99:.2f} |")


if __name__ == "__main__":
    main()
