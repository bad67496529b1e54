"""Two writers of one coordinate that do not exclude each other, as while Redis comes back: one
holds PostgreSQL's advisory lock (Redis did not answer it), the other the Redis lock. Both commit
to PostgreSQL; whichever cache call lands last, the cache ends with the last commit (or nothing,
after a delete). Run on the Redis cache and the in-process cache; events order the steps.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import redis.asyncio as aioredis

from somamemory.models import Memory, NewMemory
from somamemory.stores import Cache
from somamemory.stores.fallback_locks import FallbackLocks
from somamemory.stores.inprocess import InProcessCache
from somamemory.stores.postgres import PostgresStore
from somamemory.stores.postgres_locks import PostgresLocks
from somamemory.stores.postgres_pool import create_pool
from somamemory.stores.redis import RedisCache, RedisLocks
from somamemory.stores.redis_client import create_client

from ..conftest import REDIS_HOST, REDIS_PORT, free_port


class Writers:
    """The two lock kinds, a store, and a cache per writer (replicas sharing their entries)."""

    def __init__(
        self, fallback: FallbackLocks, redis: RedisLocks, store: PostgresStore, caches: list[Cache]
    ) -> None:
        self.fallback, self.redis, self.store = fallback, redis, store
        self.cache_a, self.cache_b = caches


@pytest.fixture(params=["redis", "in-process"])
async def writers(
    request: pytest.FixtureRequest, database_url: str, own_redis_prefix: str
) -> AsyncIterator[Writers]:
    pool = await create_pool(database_url, min_size=1, max_size=4, timeout=5)
    advisory = await PostgresLocks.open(
        database_url, max_holders=2, timeout=5, budget=5, connect_timeout=5
    )
    away = create_client("127.0.0.1", free_port(), password=None, db=0, timeout=1)
    live = [aioredis.Redis(host=REDIS_HOST, port=REDIS_PORT) for _ in range(3)]
    if request.param == "in-process":
        shared = InProcessCache(ttl_seconds=60)
        caches: list[Cache] = [shared, shared]
    else:
        caches = [RedisCache(c, prefix=own_redis_prefix, ttl_seconds=60) for c in live[:2]]
    try:
        yield Writers(
            FallbackLocks(RedisLocks(away, prefix=own_redis_prefix, timeout=5), advisory),
            RedisLocks(live[2], prefix=own_redis_prefix, timeout=5),
            PostgresStore(pool),
            caches,
        )
    finally:
        for client in [away, *live]:
            await client.aclose()
        await advisory.close()
        await pool.close()


async def _race(writers: Writers, namespace: str, second: Callable[[], Awaitable[None]]) -> Memory:
    """Writer A commits under the fallback lock; ``second`` runs under the Redis lock while A
    still holds its own; A's cache update arrives last. A's memory."""
    key = f"{namespace}:1.0"
    a_committed, b_done = asyncio.Event(), asyncio.Event()
    written: list[Memory] = []

    async def writer_a() -> None:
        async with writers.fallback.hold(key):
            written.append(
                await writers.store.put(NewMemory(namespace, "1.0", "episodic", {"text": "a"}, 0.0))
            )
            a_committed.set()
            await b_done.wait()  # B got its lock although A holds this one: no exclusion
            await writers.cache_a.set_many(written)

    async def writer_b() -> None:
        await a_committed.wait()
        async with writers.redis.hold(key):
            await second()
        b_done.set()

    await asyncio.wait_for(asyncio.gather(writer_a(), writer_b()), 30)
    return written[0]


async def test_the_older_of_two_unexcluded_writes_never_lands_last(
    writers: Writers, namespace: str
) -> None:
    newer: list[Memory] = []

    async def write_b() -> None:
        newer.append(
            await writers.store.put(NewMemory(namespace, "1.0", "episodic", {"text": "b"}, 0.0))
        )
        await writers.cache_b.set_many(newer)

    older = await _race(writers, namespace, write_b)
    assert (older.version, newer[0].version) == (1, 2)
    hit = await writers.cache_b.get(namespace, "1.0")
    assert hit.value is not None and Memory.from_json(hit.value).payload == {"text": "b"}


async def test_a_write_landing_after_an_unexcluded_delete_stays_out(
    writers: Writers, namespace: str
) -> None:
    async def delete_b() -> None:
        removed = await writers.store.delete(namespace, "1.0")
        await writers.cache_b.tombstone_many([(namespace, "1.0", removed)])

    written = await _race(writers, namespace, delete_b)
    assert written.version == 1
    assert await writers.store.get(namespace, "1.0") is None
    assert (await writers.cache_b.get(namespace, "1.0")).value is None
