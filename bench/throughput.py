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
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
import httpx
from harness import TOKEN, drop_database, migrated_database, serving

from somamemory.embeddings import HashEmbedder
from somamemory.models import NewMemory
from somamemory.stores.milvus import MilvusVectorStore
from somamemory.stores.postgres import PostgresStore
from somamemory.stores.postgres_pool import create_pool

HEADERS = {"Authorization": f"Bearer {TOKEN}", "X-Soma-Namespace": "bench"}


def _env(db_url: str, batching: bool) -> dict[str, str]:
    return {
        "POSTGRES_URL": db_url,
        "REDIS_HOST": "127.0.0.1",
        "SOMA_REDIS_KEY_PREFIX": f"bench-{uuid.uuid4().hex[:6]}",
        "SOMA_ENABLE_BATCH_UPSERT": "1" if batching else "0",
        "SOMA_POSTGRES_POOL_MAX": "20",
    }


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
            db = await migrated_database()
            try:
                with serving(Path(tmp) / name.replace(" ", "_"), _env(db, batching)) as url:
                    rows.append((name, await _single_posts(url, args.memories, 64)))
            finally:
                await drop_database(db)
        db = await migrated_database()
        try:
            with serving(Path(tmp) / "bulk", _env(db, False)) as url:
                bulk = await _bulk_posts(url, args.bulk_memories, args.per_request)
            rows.append((f"POST /memories/batch ({args.per_request} per request, c=2)", bulk))
        finally:
            await drop_database(db)
        db = await migrated_database()  # the raw path starts from the same empty tables
        try:
            raw = await _raw(db, Path(tmp), args.bulk_memories, args.per_request)
            rows.append((f"raw: put_many + Milvus upsert ({args.per_request} per batch)", raw))
        finally:
            await drop_database(db)
    off, on = rows[0][1], rows[1][1]
    print("\n| write path | memories/s |\n|---|---|")
    for name, rate in rows:
        print(f"| {name} | {rate:,.0f} |")
    print(f"\nbatching on / off: {on / off:.1f}x; bulk / raw: {bulk / raw:.0%}")


if __name__ == "__main__":
    asyncio.run(main())
