"""One lock contract, on Redis (two clients, as two replicas) and in-process."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as aioredis

from somamemory.stores import Locks
from somamemory.stores.inprocess import InProcessLocks
from somamemory.stores.redis import RedisLocks

from ..conftest import REDIS_HOST, REDIS_PORT

Replicas = Callable[[], Locks]


@pytest.fixture(params=["redis", "in-process"])
async def replicas(request: pytest.FixtureRequest) -> AsyncIterator[Replicas]:
    if request.param == "in-process":
        shared = InProcessLocks()
        yield lambda: shared
        return
    prefix = f"soma-test-locks-{uuid.uuid4().hex[:8]}"
    clients: list[aioredis.Redis] = []

    def replica() -> Locks:
        client = aioredis.Redis(host=REDIS_HOST, port=REDIS_PORT)
        clients.append(client)
        return RedisLocks(client, prefix=prefix, timeout=5)

    yield replica
    for client in clients:
        await client.aclose()


async def test_overlapping_holders_never_run_together(replicas: Replicas) -> None:
    inside: set[str] = set()
    overlaps: list[tuple[str, str]] = []

    async def work(locks: Locks, name: str, keys: list[str]) -> None:
        for _ in range(5):
            async with locks.hold_many(keys):
                overlaps.extend((name, other) for other in inside)
                inside.add(name)
                await asyncio.sleep(0.002)
                inside.discard(name)

    one, two, three = replicas(), replicas(), replicas()
    await asyncio.wait_for(
        asyncio.gather(
            work(one, "a-then-b", ["a", "b"]),
            work(two, "b-then-a", ["b", "a"]),  # reversed order: no deadlock either
            work(three, "b-alone", ["b"]),
        ),
        timeout=30,
    )
    assert overlaps == []


async def test_a_single_hold_and_a_many_hold_exclude_each_other(replicas: Replicas) -> None:
    one, two = replicas(), replicas()
    order: list[str] = []
    single_holds = asyncio.Event()

    async def single() -> None:
        async with one.hold("k"):
            order.append("single in")
            single_holds.set()
            await asyncio.sleep(0.05)
            order.append("single out")

    async def many() -> None:
        await single_holds.wait()  # asks while the single hold is in (not after a guessed delay)
        async with two.hold_many(["j", "k"]):
            order.append("many in")

    await asyncio.wait_for(asyncio.gather(single(), many()), timeout=30)
    assert order == ["single in", "single out", "many in"]


async def test_disjoint_keys_do_not_wait(replicas: Replicas) -> None:
    one, two = replicas(), replicas()
    async with one.hold_many(["x"]):
        async with asyncio.timeout(5):
            async with two.hold_many(["y", "z"]):
                pass
