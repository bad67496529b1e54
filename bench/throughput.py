"""Write throughput: single POST /memories (concurrency 64) with batching off and on,
POST /memories/batch, and the raw limit of the same backends without HTTP.

Each HTTP case starts ``somamemory serve`` as its own process on a fresh PostgreSQL database
(the machine's server), Redis, and a fresh milvus-lite directory; the load comes from this
process over loopback (so client and server share the 2 cores). The raw case writes the same
memories through the service's own stores: PostgreSQL multi-row upserts (``put_many``) and
Milvus upserts of precomputed vectors, then a flush.

    python bench/throughput.py [--memories 3000] [--bulk-memories 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
import asyncpg
import httpx

from somamemory.embeddings import HashEmbedder
from somamemory.models import NewMemory
from somamemory.stores.milvus import MilvusVectorStore
from somamemory.stores.postgres import PostgresStore, create_pool

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
TOKEN = "bench-token"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "X-Soma-Namespace": "bench"}


async def _database() -> str:
    name = f"soma_bench_{uuid.uuid4().hex[:8]}"
    connection = await asyncpg.connect(ADMIN_URL)
    await connection.execute(f'CREATE DATABASE "{name}"')
    await connection.close()
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    subprocess.run(
        [sys.executable, "-m", "somamemory.cli", "migrate"],
        check=True,
        capture_output=True,
        env={**os.environ, "POSTGRES_URL": url},
    )
    return url


async def _drop(url: str) -> None:
    connection = await asyncpg.connect(ADMIN_URL)
    await connection.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    await connection.close()


def _serve(db_url: str, data_dir: Path, batching: bool) -> tuple[subprocess.Popen[bytes], str]:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOMA_", "POSTGRES", "REDIS"))}
    env.update(
        {
            "SOMA_API_TOKEN": TOKEN,
            "POSTGRES_URL": db_url,
            "REDIS_HOST": "127.0.0.1",
            "SOMA_REDIS_KEY_PREFIX": f"bench-{uuid.uuid4().hex[:6]}",
            "SOMA_FORCE_HASH_EMBEDDINGS": "1",
            "SOMA_LOG_LEVEL": "WARNING",
            "SOMA_ENABLE_BATCH_UPSERT": "1" if batching else "0",
            "SOMA_POSTGRES_POOL_MAX": "20",
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
    for _ in range(300):
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("service did not start")


async def _single_posts(url: str, total: int, concurrency: int) -> float:
    """aiohttp as the load generator: httpx's pool slows down under this much concurrency."""
    queue = iter(range(total))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(url, headers=HEADERS, connector=connector) as session:

        async def worker() -> None:
            for i in queue:
                body = {"coord": f"{i},1", "payload": {"text": f"memory number {i} of the run"}}
                async with session.post("/memories", json=body) as response:
                    response.raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return total / (time.perf_counter() - started)


async def _bulk_posts(url: str, total: int, per_request: int, concurrency: int = 2) -> float:
    chunks = iter(range(0, total, per_request))
    async with httpx.AsyncClient(base_url=url, headers=HEADERS, timeout=300) as client:

        async def worker() -> None:
            for start in chunks:
                items = [
                    {"coord": f"{i},2", "payload": {"text": f"memory number {i} of the run"}}
                    for i in range(start, min(start + per_request, total))
                ]
                response = await client.post("/memories/batch", json={"items": items})
                response.raise_for_status()
                assert response.json()["failed"] == 0

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return total / (time.perf_counter() - started)


async def _raw(db_url: str, data_dir: Path, total: int, per_batch: int) -> float:
    embedder = HashEmbedder(384)
    news = [
        NewMemory("bench", f"{i}.0,3.0", "episodic", {"text": f"memory number {i} of the run"}, 0.0)
        for i in range(total)
    ]
    vectors = await embedder.embed([n.payload["text"] for n in news])  # not timed
    pool = await create_pool(db_url, min_size=2, max_size=4, timeout=10)
    store = PostgresStore(pool)
    milvus = await asyncio.to_thread(
        MilvusVectorStore.connect,
        str(data_dir / "raw.db"),
        collection="raw",
        dim=384,
        token=None,
        timeout=10,
    )
    started = time.perf_counter()
    for start in range(0, total, per_batch):
        memories = await store.put_many(news[start : start + per_batch])
        await milvus.upsert(list(zip(memories, vectors[start : start + per_batch], strict=True)))
    await milvus.flush()
    rate = total / (time.perf_counter() - started)
    await milvus.close()
    await pool.close()
    return rate


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memories", type=int, default=3000)
    parser.add_argument("--bulk-memories", type=int, default=20000)
    parser.add_argument("--per-request", type=int, default=500)
    args = parser.parse_args()
    rows: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, batching in (
            ("POST /memories, batching off (c=64)", False),
            ("POST /memories, batching on (c=64)", True),
        ):
            db = await _database()
            process, url = _serve(db, Path(tmp) / name.replace(" ", "_"), batching)
            try:
                rows.append((name, await _single_posts(url, args.memories, 64)))
            finally:
                process.terminate()
                process.wait()
                await _drop(db)
        db = await _database()
        process, url = _serve(db, Path(tmp) / "bulk", False)
        try:
            bulk = await _bulk_posts(url, args.bulk_memories, args.per_request)
            rows.append((f"POST /memories/batch ({args.per_request} per request, c=2)", bulk))
        finally:
            process.terminate()
            process.wait()
            await _drop(db)
        db = await _database()
        try:
            raw = await _raw(db, Path(tmp), args.bulk_memories, args.per_request)
            rows.append((f"raw: put_many + Milvus upsert ({args.per_request} per batch)", raw))
        finally:
            await _drop(db)
    off, on = rows[0][1], rows[1][1]
    print("\n| write path | memories/s |\n|---|---|")
    for name, rate in rows:
        print(f"| {name} | {rate:,.0f} |")
    print(f"\nbatching on / off: {on / off:.1f}x; bulk / raw: {bulk / raw:.0%}")


if __name__ == "__main__":
    asyncio.run(main())
