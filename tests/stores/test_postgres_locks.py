"""PostgreSQL's advisory locks: the lock contract, with each holder on a pool of its own (as in
separate processes), plus what they promise beyond it: all or none, a bounded wait, keys given
back on every way out, and the same lock numbers in every version and process."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest

from somamemory.errors import BackendUnavailable, LockTimeout
from somamemory.stores import Locks
from somamemory.stores.fallback_locks import FallbackLocks
from somamemory.stores.postgres_locks import PostgresLocks, lock_id
from somamemory.stores.redis import RedisLocks
from somamemory.stores.redis_client import create_client

from ..conftest import free_port
from .test_locks import (  # the shared contract, run here on PostgreSQL
    test_a_single_hold_and_a_many_hold_exclude_each_other,
    test_disjoint_keys_do_not_wait,
    test_overlapping_holders_never_run_together,
)

__all__ = [
    "test_a_single_hold_and_a_many_hold_exclude_each_other",
    "test_disjoint_keys_do_not_wait",
    "test_overlapping_holders_never_run_together",
]

Open = Callable[..., Awaitable[PostgresLocks]]


@pytest.fixture
async def open_locks(database_url: str) -> AsyncIterator[Open]:
    """A new ``PostgresLocks`` on a pool of its own per call: one per simulated process."""
    opened: list[PostgresLocks] = []

    async def open_one(timeout: float = 5.0, max_holders: int = 4) -> PostgresLocks:
        locks = await PostgresLocks.open(
            database_url, max_holders=max_holders, timeout=timeout, budget=5, connect_timeout=5
        )
        opened.append(locks)
        return locks

    yield open_one
    for locks in opened:
        await locks.close()


@pytest.fixture
async def replicas(open_locks: Open) -> AsyncIterator[Callable[[], Locks]]:
    """For the shared contract: three holders, each on its own pool, opened up front."""
    made = iter([await open_locks() for _ in range(3)])
    yield lambda: next(made)


def keys() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:8]
    return f"ns-{tag}:1.0", f"ns-{tag}:2.0"


async def held_by_anyone(database_url: str, key: str) -> bool:
    """Whether any session holds the advisory lock of ``key`` (asked of PostgreSQL itself)."""
    number = lock_id(key)
    connection = await asyncpg.connect(database_url)
    try:
        found = await connection.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND ((classid::bigint << 32) | objid::bigint) = $1",
            number,
        )
    finally:
        await connection.close()
    return bool(found)


async def test_a_holder_on_another_pool_waits_and_then_gets_the_key(open_locks: Open) -> None:
    one, two = await open_locks(), await open_locks()
    key, _ = keys()
    order: list[str] = []

    async def second() -> None:
        async with two.hold(key):
            order.append("second in")

    async with one.hold(key):
        waiting = asyncio.create_task(second())
        await asyncio.sleep(0.2)
        order.append("first out")
    await asyncio.wait_for(waiting, 10)
    assert order == ["first out", "second in"]


async def test_many_keys_are_taken_all_or_none(open_locks: Open, database_url: str) -> None:
    holder, greedy, other = await open_locks(), await open_locks(timeout=0.5), await open_locks()
    free, busy = sorted(keys(), key=lock_id)  # taken in this order: free first, then busy
    async with holder.hold(busy):
        with pytest.raises(LockTimeout, match="2 lock\\(s\\) not acquired"):
            async with greedy.hold_many([busy, free]):
                pass
        # it took the free key before it waited for the busy one, and let go of it
        assert not await held_by_anyone(database_url, free)
        async with asyncio.timeout(5):
            async with other.hold(free):
                pass
    async with asyncio.timeout(5):
        async with greedy.hold_many([free, busy]):  # both free now: both at once
            assert await held_by_anyone(database_url, free)
            assert await held_by_anyone(database_url, busy)


async def test_keys_are_given_back_on_every_way_out(open_locks: Open, database_url: str) -> None:
    # one connection only: a connection kept by any way out would make the next hold time out
    locks, rival = await open_locks(timeout=0.5, max_holders=1), await open_locks()
    key, other = keys()
    with pytest.raises(RuntimeError):
        async with locks.hold_many([key, other]):
            raise RuntimeError("the work failed")
    assert not await held_by_anyone(database_url, key)
    async with rival.hold(key):
        with pytest.raises(LockTimeout):
            async with locks.hold(key):
                pass
        waiter = asyncio.create_task(asyncio.wait_for(_enter(locks, key), 10))
        await asyncio.sleep(0.1)
        waiter.cancel()  # a caller that gives up while it waits
        with pytest.raises(asyncio.CancelledError):
            await waiter
    async with asyncio.timeout(5):
        async with locks.hold_many([key, other]):
            pass
    assert not await held_by_anyone(database_url, key)
    assert not await held_by_anyone(database_url, other)


async def _enter(locks: Locks, key: str) -> None:
    async with locks.hold(key):
        pass


async def test_holders_in_one_process_exclude_each_other_on_one_connection(
    open_locks: Open,
) -> None:
    locks = await open_locks(max_holders=1)  # one connection for all of them
    key, _ = keys()
    inside = 0
    most = 0

    async def work() -> None:
        nonlocal inside, most
        async with locks.hold(key):
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.01)
            inside -= 1

    await asyncio.wait_for(asyncio.gather(*(work() for _ in range(10))), 20)
    assert most == 1


async def test_a_postgresql_that_does_not_answer_is_unavailable_not_busy() -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/test"
    locks = await PostgresLocks.open(url, max_holders=2, timeout=1, budget=1, connect_timeout=1)
    try:
        with pytest.raises(BackendUnavailable) as raised:
            async with locks.hold("ns:1.0"):
                pass
        assert not isinstance(raised.value, LockTimeout)  # so a fallback may take over
    finally:
        await locks.close()


async def test_with_redis_away_postgresql_locks_exclude_across_processes(
    open_locks: Open,
) -> None:
    away = create_client("127.0.0.1", free_port(), password=None, db=0, timeout=1)
    try:
        one = FallbackLocks(RedisLocks(away, prefix="p", timeout=1), await open_locks())
        two = FallbackLocks(RedisLocks(away, prefix="p", timeout=1), await open_locks())
        key, _ = keys()
        order: list[str] = []

        async def second() -> None:
            await asyncio.sleep(0.1)
            async with two.hold(key):
                order.append("second in")

        async def first() -> None:
            async with one.hold(key):
                order.append("first in")
                await asyncio.sleep(0.5)
                order.append("first out")

        await asyncio.wait_for(asyncio.gather(first(), second()), 20)
        assert order == ["first in", "first out", "second in"]
    finally:
        await away.aclose()


def test_lock_numbers_do_not_change_between_versions_or_processes() -> None:
    # replicas of two versions during a rolling upgrade must take the same lock for a key
    assert lock_id("default:1.0,2.0") == lock_id("default:1.0,2.0")
    assert lock_id("default:1.0,2.0") != lock_id("other:1.0,2.0")
    assert lock_id("default:1.0,2.0") == 1290088868921462455  # blake2b, not Python's hash()
