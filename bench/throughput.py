"""Write throughput: single POST /memories (concurrency 64) with batching off and on,
POST /memories/batch, and the raw limit of the same backends without HTTP.

Each HTTP case starts ``somamemory serve`` as its own process on a fresh PostgreSQL database
(the machine's server), Redis, and a fresh milvus-lite directory; the load comes from this
process over loopback (so client and server share the 2 cores). The raw case is the backends'
own limit for the same memories, no service code on its path: asyncpg multi-row upserts of the
memories and their version rows (one transaction per batch, as the service commits them) and
pymilvus inserts of precomputed vectors, with two batches in flight as the bulk HTTP case has, on
the same clock (from the first batch to the last answer; neither waits for milvus-lite's flush).
The last case is the embedded default (its own PostgreSQL, the in-process cache) with batching on.
Every case runs ``--repeat`` times; the ratios use the medians.

    python bench/throughput.py [--memories 3000] [--bulk-memories 20000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import aiohttp
import asyncpg
import httpx
from harness import TOKEN, drop_database, migrated_database, serving
from pymilvus import MilvusClient

from somamemory.embeddings import HashEmbedder
from somamemory.stores.milvus import MilvusVectorStore, vector_id

HEADERS = {"Authorization": f"Bearer {TOKEN}", "X-Soma-Namespace": "bench"}


def _env(db_url: str, batching: bool) -> dict[str, str]:
    return {
        "POSTGRES_URL": db_url,
        "REDIS_HOST": "127.0.0.1",
        "SOMA_REDIS_KEY_PREFIX": f"bench-{uuid.uuid4().hex[:6]}",
        "SOMA_ENABLE_BATCH_UPSERT": "1" if batching else "0",
        "SOMA_POSTGRES_POOL_MAX": "20",
    }


async def single_posts(
    url: str, total: int, concurrency: int, texts: Sequence[str] | None = None, first: int = 0
) -> float:
    """Memories/s of single POSTs of memories ``first`` to ``first + total - 1``, ``concurrency``
    at a time (memory ``i`` holds ``texts[i]`` if given). aiohttp: httpx's pool slows down under
    this much concurrency."""
    queue = iter(range(first, first + total))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(url, headers=HEADERS, connector=connector) as session:

        async def worker() -> None:
            for i in queue:
                text = texts[i] if texts is not None else f"memory number {i} of the run"
                body = {"coord": f"{i},1", "payload": {"text": text}}
                async with session.post("/memories", json=body) as response:
                    response.raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return total / (time.perf_counter() - started)


async def bulk_posts(
    url: str,
    total: int,
    per_request: int,
    concurrency: int = 2,
    texts: Sequence[str] | None = None,
) -> float:
    """Memories/s of ``total`` memories in POST /memories/batch requests of ``per_request``,
    ``concurrency`` at a time (memory ``i`` holds ``texts[i]`` if given)."""
    chunks = iter(range(0, total, per_request))
    text = texts if texts is not None else [f"memory number {i} of the run" for i in range(total)]
    async with httpx.AsyncClient(base_url=url, headers=HEADERS, timeout=300) as client:

        async def worker() -> None:
            for start in chunks:
                items = [
                    {"coord": f"{i},2", "payload": {"text": text[i]}}
                    for i in range(start, min(start + per_request, total))
                ]
                response = await client.post("/memories/batch", json={"items": items})
                response.raise_for_status()
                assert response.json()["failed"] == 0

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return total / (time.perf_counter() - started)


_RAW_MEMORIES = """
INSERT INTO memories (namespace, coord, memory_type, payload, importance, version,
                      created_at, updated_at)
SELECT 'bench', coord, 'episodic', payload::jsonb, 0, 1, now(), now()
FROM unnest($1::text[], $2::text[]) AS input(coord, payload)
ON CONFLICT (namespace, coord) DO UPDATE
    SET payload = EXCLUDED.payload, version = memories.version + 1, updated_at = now()
RETURNING coord, version, payload::text
"""
_RAW_VERSIONS = """
INSERT INTO memory_versions (namespace, coord, version, memory_type, payload, importance,
                             created_at, updated_at)
SELECT 'bench', coord, version, 'episodic', payload::jsonb, 0, now(), now()
FROM unnest($1::text[], $2::bigint[], $3::text[]) AS input(coord, version, payload)
"""


async def _raw(db_url: str, data_dir: Path, total: int, per_batch: int) -> float:
    """asyncpg and pymilvus called directly, two batches in flight (the bulk case's shape)."""
    texts = [f"memory number {i} of the run" for i in range(total)]
    vectors = await HashEmbedder(384).embed(texts)  # not timed: the bench sends no vectors
    batches = []
    for start in range(0, total, per_batch):  # built before the clock starts
        coords = [f"{i}.0,3.0" for i in range(start, min(start + per_batch, total))]
        payloads = [json.dumps({"text": texts[i]}) for i in range(start, start + len(coords))]
        rows = [
            {
                "id": vector_id("bench", coord),
                "namespace": "bench",
                "coord": coord,
                "memory_type": "episodic",
                "version": 1,
                "importance": 0.0,
                "fields": {},
                "vector": vectors[start + k],
            }
            for k, coord in enumerate(coords)
        ]
        batches.append((coords, payloads, rows))
    store = await asyncio.to_thread(  # the service's collection schema, created untimed
        MilvusVectorStore.connect,
        str(data_dir / "raw.db"),
        collection="raw",
        dim=384,
        token=None,
        timeout=10,
    )
    milvus = MilvusClient(str(data_dir / "raw.db"))
    pool = await asyncpg.create_pool(db_url, min_size=2, max_size=2)
    pending = iter(batches)

    async def worker() -> None:
        for coords, payloads, rows in pending:
            async with pool.acquire() as connection, connection.transaction():
                written = await connection.fetch(_RAW_MEMORIES, coords, payloads)
                await connection.execute(
                    _RAW_VERSIONS, *map(list, zip(*(tuple(r) for r in written), strict=True))
                )
            await asyncio.to_thread(milvus.insert, "raw", rows)

    started = time.perf_counter()
    await asyncio.gather(worker(), worker())
    rate = total / (time.perf_counter() - started)
    assert await pool.fetchval("SELECT count(*) FROM memory_versions") == total
    assert (await asyncio.to_thread(milvus.get_collection_stats, "raw"))["row_count"] == total
    milvus.close()
    await store.close()
    await pool.close()
    return rate


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memories", type=int, default=3000)
    parser.add_argument("--bulk-memories", type=int, default=20000)
    parser.add_argument("--per-request", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    names = [
        "POST /memories, batching off (c=64)",
        "POST /memories, batching on (c=64)",
        f"POST /memories/batch ({args.per_request} per request, c=2)",
        f"raw: asyncpg upserts + pymilvus inserts ({args.per_request} per batch, c=2)",
        "embedded default: POST /memories, batching on (c=64)",
    ]
    samples: dict[str, list[float]] = {name: [] for name in names}
    for run in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            for name, batching in zip(names[:2], (False, True), strict=True):
                db = await migrated_database()
                try:
                    with serving(Path(tmp) / f"{run}-{batching}", _env(db, batching)) as url:
                        samples[name].append(await single_posts(url, args.memories, 64))
                finally:
                    await drop_database(db)
            db = await migrated_database()
            try:
                with serving(Path(tmp) / f"{run}-bulk", _env(db, False)) as url:
                    bulk = await bulk_posts(url, args.bulk_memories, args.per_request)
                samples[names[2]].append(bulk)
            finally:
                await drop_database(db)
            db = await migrated_database()  # the raw path starts from the same empty tables
            try:
                samples[names[3]].append(
                    await _raw(db, Path(tmp), args.bulk_memories, args.per_request)
                )
            finally:
                await drop_database(db)
            # the embedded default: its own PostgreSQL, the in-process cache, milvus-lite
            embedded = {"SOMA_ENABLE_BATCH_UPSERT": "1"}
            with serving(Path(tmp) / f"{run}-embedded", embedded) as url:
                samples[names[4]].append(await single_posts(url, args.memories, 64))
    runs = " | ".join(f"run {i + 1}" for i in range(args.repeat))
    print(f"\n| write path | {runs} | median memories/s |\n|---|{'---|' * (args.repeat + 1)}")
    for name in names:
        cells = " | ".join(f"{rate:,.0f}" for rate in samples[name])
        print(f"| {name} | {cells} | {statistics.median(samples[name]):,.0f} |")
    off, on, bulk, raw, _ = (statistics.median(samples[name]) for name in names)
    print(f"\nmedians: batching on / off: {on / off:.1f}x; bulk / raw: {bulk / raw:.0%}")


if __name__ == "__main__":
    asyncio.run(main())
