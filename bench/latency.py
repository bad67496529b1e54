"""Single-request latency over HTTP: ``POST /memories`` and ``GET /memories/{coord}`` (cache hit).

Starts ``somamemory serve`` as a real process twice: on the embedded default (pgserver, in-process
cache, milvus-lite) and on an external PostgreSQL + Redis (milvus-lite for vectors in both), then
sends requests one at a time over one keep-alive connection and prints p50/p99 in milliseconds.

    python bench/latency.py [--requests 2000] [--postgres URL] [--redis-host H]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from pathlib import Path

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--postgres", default=ADMIN_URL)
    parser.add_argument("--redis-host", default="127.0.0.1")
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
        finally:
            asyncio.run(drop_database(database, args.postgres))

    print(f"\n{args.requests} sequential requests per row, one keep-alive connection\n")
    print("| backends | request | p50 ms | p99 ms |\n|---|---|---|---|")
    for backends, rows in results.items():
        for request, (p50, p99) in rows.items():
            print(f"| {backends} | {request} | {p50:.2f} | {p99:.2f} |")


if __name__ == "__main__":
    main()
