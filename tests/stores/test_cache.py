"""One cache contract, run on the Redis cache (the machine's Redis) and the in-process cache.

The contract that matters most: a value read canonically before a delete or a newer write can
never be put back into the cache afterwards, on this replica or another one.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis

from somamemory.models import Memory
from somamemory.stores import Cache
from somamemory.stores.inprocess import InProcessCache
from somamemory.stores.redis import RedisCache

from ..conftest import REDIS_HOST, REDIS_PORT

Replicas = Callable[[], Cache]


def _memory(coord: str, version: int = 1, text: str = "x", namespace: str = "ns") -> Memory:
    now = datetime.now(UTC)
    return Memory(namespace, coord, "episodic", {"text": text}, 0.0, version, now, now)


@pytest.fixture(params=["redis", "in-process"])
async def replicas(request: pytest.FixtureRequest) -> AsyncIterator[Replicas]:
    """Caches that share their entries as replicas of one service would."""
    if request.param == "in-process":
        shared = InProcessCache(ttl_seconds=60)  # one process: one cache
        yield lambda: shared
        return
    prefix = f"soma-test-cache-{uuid.uuid4().hex[:8]}"
    clients: list[aioredis.Redis] = []

    def replica() -> Cache:
        client = aioredis.Redis(host=REDIS_HOST, port=REDIS_PORT)
        clients.append(client)
        return RedisCache(client, prefix=prefix, ttl_seconds=60)

    yield replica
    for client in clients:
        keys = [key async for key in client.scan_iter(f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def test_a_miss_then_a_fill_makes_a_hit(replicas: Replicas) -> None:
    cache = replicas()
    miss = await cache.get("ns", "1.0")
    assert miss.value is None and miss.lease is not None
    await cache.fill(_memory("1.0", text="filled"), miss.lease)
    hit = await cache.get("ns", "1.0")
    assert hit.value is not None and Memory.from_json(hit.value).payload == {"text": "filled"}


async def test_a_delete_between_read_and_fill_keeps_the_memory_out(replicas: Replicas) -> None:
    reader, deleter = replicas(), replicas()
    miss = await reader.get("ns", "2.0")  # the reader then reads the memory canonically ...
    await deleter.invalidate("ns", "2.0")  # ... while a delete commits and drops the entry
    assert miss.lease is not None
    await reader.fill(_memory("2.0"), miss.lease)  # the stale fill arrives last
    assert (await reader.get("ns", "2.0")).value is None
    assert (await deleter.get("ns", "2.0")).value is None


async def test_a_batch_invalidation_between_read_and_fill_wins(replicas: Replicas) -> None:
    reader, writer = replicas(), replicas()
    miss = await reader.get("ns", "3.0")
    await writer.invalidate_many([("ns", "3.0"), ("ns", "4.0")])
    assert miss.lease is not None
    await reader.fill(_memory("3.0"), miss.lease)
    assert (await reader.get("ns", "3.0")).value is None


async def test_a_newer_write_between_read_and_fill_is_not_overwritten(replicas: Replicas) -> None:
    reader, writer = replicas(), replicas()
    miss = await reader.get("ns", "5.0")
    await writer.set_many([_memory("5.0", version=2, text="newer")])
    assert miss.lease is not None
    await reader.fill(_memory("5.0", version=1, text="older"), miss.lease)
    hit = await reader.get("ns", "5.0")
    assert hit.value is not None and Memory.from_json(hit.value).version == 2


async def test_a_second_reader_during_a_fill_reads_through_without_a_lease(
    replicas: Replicas,
) -> None:
    first, second = replicas(), replicas()
    claimed = await first.get("ns", "6.0")
    meanwhile = await second.get("ns", "6.0")
    assert claimed.lease is not None
    assert meanwhile.value is None and meanwhile.lease is None


async def test_the_in_process_cache_stays_within_its_byte_budget() -> None:
    cache = InProcessCache(ttl_seconds=60, max_bytes=200_000)
    big = "x" * 50_000
    await cache.set_many([_memory(f"{n}.0", text=big) for n in range(40)])
    assert cache.size_bytes <= 200_000
    newest = await cache.get("ns", "39.0")
    assert newest.value is not None  # least recently used entries went first
    assert (await cache.get("ns", "0.0")).value is None


async def test_the_in_process_cache_drops_expired_entries_without_reads() -> None:
    cache = InProcessCache(ttl_seconds=0.000_001, max_bytes=10_000_000)
    await cache.set_many([_memory(f"{n}.0", text="y" * 10_000) for n in range(50)])
    await cache.set_many([_memory("fresh.0")])  # storing sweeps what expired before it
    assert cache.size_bytes < 10_000
