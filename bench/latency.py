"""Single-request latency over HTTP: ``POST /memories`` and ``GET /memories/{coord}`` (cache hit).

Starts ``somamemory serve`` as a real process twice: on the embedded default (pgserver, in-process
cache, milvus-lite) and on an external PostgreSQL + Redis (milvus-lite for vectors in both), then
sends requests one at a time over one keep-alive connection and prints p50/p99 in milliseconds.

    python bench/latency.py [--requests 2000] [--postgres URL] [--redis-host H]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
import httpx

TOKEN = "bench-token"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(env_extra: dict[str, str], data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOMA_", "POSTGRES", "REDIS"))}
    env.update(
        {
            "SOMA_API_TOKEN": TOKEN,
            "SOMA_FORCE_HASH_EMBEDDINGS": "1",
            "SOMA_LOG_LEVEL": "WARNING",
            **env_extra,
        }
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "somamemory.cli",
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
        ],
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("service did not become ready")


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
    return p50, p99


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
        "POST /memories": _percentiles(writes),
        "GET /memories/{coord} (hit)": _percentiles(reads),
    }


async def _create_database(admin_url: str) -> str:
    name = f"soma_bench_{uuid.uuid4().hex[:8]}"
    connection = await asyncpg.connect(admin_url)
    await connection.execute(f'CREATE DATABASE "{name}"')
    await connection.close()
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


async def _drop_database(admin_url: str, url: str) -> None:
    connection = await asyncpg.connect(admin_url)
    await connection.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    await connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--redis-host", default="127.0.0.1")
    args = parser.parse_args()

    results: dict[str, dict[str, tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        process, url = _start({}, Path(tmp) / "embedded")
        try:
            results["embedded default"] = _measure(url, args.requests)
        finally:
            process.terminate()
            process.wait()

        database = asyncio.run(_create_database(args.postgres))
        subprocess.run(
            [sys.executable, "-m", "somamemory.cli", "migrate"],
            check=True,
            env={**os.environ, "POSTGRES_URL": database},
            capture_output=True,
        )
        env = {
            "POSTGRES_URL": database,
            "REDIS_HOST": args.redis_host,
            "SOMA_REDIS_KEY_PREFIX": f"bench-{uuid.uuid4().hex[:6]}",
        }
        process, url = _start(env, Path(tmp) / "external")
        try:
            results["PostgreSQL + Redis"] = _measure(url, args.requests)
        finally:
            process.terminate()
            process.wait()
            asyncio.run(_drop_database(args.postgres, database))

    print(f"\n{args.requests} sequential requests per row, one keep-alive connection\n")
    print("| backends | request | p50 ms | p99 ms |\n|---|---|---|---|")
    for backends, rows in results.items():
        for request, (p50, p99) in rows.items():
            print(f"| {backends} | {request} | {p50:.2f} | {p99:.2f} |")


if __name__ == "__main__":
    main()
