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


def _version(found: bytes | None) -> int | None:
    return None if found is None else Memory.from_json(found).version


async def test_an_older_value_set_after_a_newer_one_leaves_the_newer(replicas: Replicas) -> None:
    newer, older = replicas(), replicas()  # two writers that did not exclude each other
    await newer.set_many([_memory("7.0", version=3, text="newer")])
    await older.set_many([_memory("7.0", version=2, text="older")])  # it lands last
    await older.set_many([_memory("7.0", version=3, text="same version again")])
    hit = await older.get("ns", "7.0")
    assert hit.value is not None and Memory.from_json(hit.value).payload == {"text": "newer"}


async def test_set_many_lands_only_its_newer_entries(replicas: Replicas) -> None:
    cache = replicas()
    await cache.set_many([_memory("8.0", version=5), _memory("9.0", version=5)])
    await cache.set_many(
        [
            _memory("8.0", version=4),  # older: stays out
            _memory("9.0", version=6),  # newer: lands
            _memory("10.0", version=1),  # nothing there: lands
            _memory("9.0", version=5),  # the same batch, older than what it just set
        ]
    )
    found = {c: _version((await cache.get("ns", c)).value) for c in ("8.0", "9.0", "10.0")}
    assert found == {"8.0": 5, "9.0": 6, "10.0": 1}


async def test_a_delete_tombstone_keeps_older_fills_and_values_out(replicas: Replicas) -> None:
    reader, writer, deleter = replicas(), replicas(), replicas()
    miss = await reader.get("ns", "11.0")  # reads version 4 canonically ...
    assert miss.lease is not None
    await deleter.tombstone_many([("ns", "11.0", 4)])  # ... a delete of version 4 commits
    await reader.fill(_memory("11.0", version=4), miss.lease)  # the stale fill arrives
    await writer.set_many([_memory("11.0", version=4)])  # so does the deleted version's write
    assert (await reader.get("ns", "11.0")).value is None
    # the tombstone's floor stays under the lease a later reader takes ...
    later = await reader.get("ns", "11.0")
    assert later.value is None and later.lease is None  # (the first reader's lease is out)
    # ... and the memory written again (versions continue after the deleted ones) is cached
    await writer.set_many([_memory("11.0", version=5, text="again")])
    assert _version((await deleter.get("ns", "11.0")).value) == 5


async def test_a_fill_lands_over_a_tombstone_below_it_and_a_lease_keeps_its_floor(
    replicas: Replicas,
) -> None:
    reader, writer = replicas(), replicas()
    await writer.tombstone_many([("ns", "12.0", 6)])  # a batch wrote version 7 (floor 6)
    miss = await reader.get("ns", "12.0")
    assert miss.lease is not None
    await writer.set_many([_memory("12.0", version=6)])  # older than the floor: out
    await reader.fill(_memory("12.0", version=6), miss.lease)  # the lease keeps the floor too
    assert (await reader.get("ns", "12.0")).value is None
    await writer.tombstone_many([("ns", "12.0", 2)])  # a lower floor does not lower it
    await reader.fill(_memory("12.0", version=6), "no lease")
    again = await reader.get("ns", "12.0")
    assert again.value is None and again.lease is not None
    await reader.fill(_memory("12.0", version=7), again.lease)  # read after the batch: lands
    assert _version((await reader.get("ns", "12.0")).value) == 7
    # a value read after a tombstone's version lands over it, the reader's lease dropped or not
    await writer.tombstone_many([("ns", "12.0", 8)])
    await reader.fill(_memory("12.0", version=9), "a lease since dropped")
    assert _version((await reader.get("ns", "12.0")).value) == 9


async def test_a_tombstone_drops_a_newer_value_but_keeps_its_version(replicas: Replicas) -> None:
    cache = replicas()
    await cache.set_many([_memory("13.0", version=9)])
    await cache.tombstone_many([("ns", "13.0", 0)])  # a delete that found nothing to delete
    assert (await cache.get("ns", "13.0")).value is None
    await cache.set_many([_memory("13.0", version=8)])
    assert (await cache.get("ns", "13.0")).value is None


async def test_the_in_process_cache_keeps_the_version_of_a_value_too_big_to_keep() -> None:
    cache = InProcessCache(ttl_seconds=60, max_bytes=1_000)
    await cache.set_many([_memory("14.0", version=3, text="x" * 2_000)])
    await cache.set_many([_memory("14.0", version=2)])
    assert (await cache.get("ns", "14.0")).value is None


async def test_an_older_format_entry_in_redis_is_a_miss_and_is_replaced() -> None:
    prefix = f"soma-test-cache-{uuid.uuid4().hex[:8]}"
    client = aioredis.Redis(host=REDIS_HOST, port=REDIS_PORT)
    cache = RedisCache(client, prefix=prefix, ttl_seconds=60)
    try:
        old_value = _memory("15.0", version=7, text="format 1").to_json()
        await client.set(f"{prefix}:cache:ns:15.0", old_value)  # format 1: the bare JSON
        await client.set(f"{prefix}:cache:ns:16.0", b"\x00lease:2b3c4d5e6f7a8b9c")  # a lease
        await client.set(f"{prefix}:cache:ns:17.0", old_value)
        miss = await cache.get("ns", "15.0")
        assert miss.value is None and miss.lease is not None  # replaced by this reader's lease
        await cache.fill(_memory("15.0", version=7, text="format 2"), miss.lease)
        hit = await cache.get("ns", "15.0")
        assert hit.value is not None and Memory.from_json(hit.value).payload["text"] == "format 2"
        lease = (await cache.get("ns", "16.0")).lease
        assert lease is not None
        await cache.fill(_memory("16.0"), lease)
        assert _version((await cache.get("ns", "16.0")).value) == 1
        await cache.set_many([_memory("17.0", version=1)])  # any version replaces format 1
        assert _version((await cache.get("ns", "17.0")).value) == 1
        assert (await cache.peek("ns", "17.0")) is not None
    finally:
        keys = [key async for key in client.scan_iter(f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()
