"""PostgreSQL advisory locks: mutual exclusion per key across processes and replicas, no Redis.

A key (``namespace:coord``) becomes a 64-bit number, a hash of it, and a holder takes the
session-level advisory lock of that number on a connection of its own. All of a holder's keys
are first tried at once, in one round trip (the usual case: nobody else holds them). Otherwise
the holder lets go of the ones it got and waits for each in ascending order of their numbers, so
two holders of overlapping sets wait in one order and never deadlock. The wait is bounded
(``statement_timeout``), and a holder that runs out of time lets go of what it took: it ends up with
all its keys or none. On exit the pool's reset releases the locks (asyncpg's
``Connection.reset`` runs ``pg_advisory_unlock_all()``); a connection whose reset fails is closed
instead, which releases them on the server. Either way no connection goes back to the pool still
holding a lock.

The connections come from a pool of their own, not the store's: a holder writes through the store
while it holds its keys, and with one shared pool every connection could be held by a holder
waiting for a second one. Within one process, holders of the same key queue on an asyncio lock
first, so at most one connection per key and process waits in PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from weakref import WeakValueDictionary

import asyncpg

from ..errors import BackendUnavailable, LockTimeout
from .postgres_pool import POSTGRES_DOWN, Pool, answered, create_pool

log = logging.getLogger(__name__)

_DOMAIN = b"somamemory:lock:"  # apart from other applications' advisory locks in one database
# every key tried at once (all rows evaluated): true when this session holds them all now
_TRY_ALL = "SELECT coalesce(bool_and(pg_try_advisory_lock(k)), true) FROM unnest($1::bigint[]) k"


def lock_id(key: str) -> int:
    """The advisory lock number of ``key``: a signed 64-bit hash (PostgreSQL's bigint)."""
    digest = hashlib.blake2b(_DOMAIN + key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class PostgresLocks:
    """Advisory locks on a pool of ``max_holders`` connections (one per holder)."""

    name = "postgres"

    def __init__(self, pool: Pool, *, max_holders: int, timeout: float, budget: float) -> None:
        self._pool = pool
        self._timeout = timeout  # the longest a holder waits for its keys
        self._budget = budget  # the longest PostgreSQL may take to answer (a frozen server)
        self._slots = asyncio.Semaphore(max_holders)  # so a free slot means a free connection
        self._queues: WeakValueDictionary[int, asyncio.Lock] = WeakValueDictionary()

    @classmethod
    async def open(
        cls, url: str, *, max_holders: int, timeout: float, budget: float, connect_timeout: float
    ) -> PostgresLocks:
        """Locks on a new pool, which connects on first use (BackendUnavailable: no server)."""
        pool = await create_pool(url, min_size=0, max_size=max_holders, timeout=connect_timeout)
        return cls(pool, max_holders=max_holders, timeout=timeout, budget=budget)

    async def close(self) -> None:
        await self._pool.close()

    def hold(self, key: str) -> AbstractAsyncContextManager[None]:
        return self.hold_many([key])

    @asynccontextmanager
    async def hold_many(self, keys: Sequence[str]) -> AsyncIterator[None]:
        ids = sorted({lock_id(key) for key in keys})
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        async with contextlib.AsyncExitStack() as stack:
            try:
                async with asyncio.timeout_at(deadline):
                    for number in ids:  # this process's other holders of these keys first
                        await stack.enter_async_context(self._queue(number))
                    await stack.enter_async_context(self._slots)
            except TimeoutError:
                raise self._timed_out(ids) from None
            connection = await self._connect()
            try:
                await self._lock(connection, ids, deadline - loop.time())
            except BaseException:
                await self._release(connection)
                raise
            try:
                yield
            finally:
                await self._release(connection)

    def _queue(self, number: int) -> asyncio.Lock:
        lock = self._queues.get(number)
        if lock is None:
            lock = self._queues[number] = asyncio.Lock()
        return lock

    def _timed_out(self, ids: list[int]) -> LockTimeout:
        return LockTimeout("postgres", f"{len(ids)} lock(s) not acquired in {self._timeout:g}s")

    async def _connect(self) -> asyncpg.Connection:
        try:
            connection: asyncpg.Connection = await self._pool.acquire(timeout=self._budget)
        except TimeoutError as exc:
            raise BackendUnavailable("postgres", "no lock connection in time") from exc
        except POSTGRES_DOWN as exc:
            raise BackendUnavailable("postgres", type(exc).__name__) from exc
        return connection

    async def _lock(self, connection: asyncpg.Connection, ids: list[int], seconds: float) -> None:
        """Take every lock of ``ids``, waiting at most ``seconds`` in all for other holders."""
        try:
            # the usual case, nobody else holds them: one round trip, within the budget (a
            # frozen server answers 503 as soon as for any other call)
            if await answered(connection.fetchval(_TRY_ALL, ids), self._budget):
                return
            if seconds <= 0:
                raise self._timed_out(ids)
            # let go of the ones taken, then wait for each in order (a function scan takes them
            # in the array's order), all within ``seconds``; the numbers are ints, so formatting
            # them in is safe
            wait_ms = max(1, int(seconds * 1000))
            numbers = ",".join(str(number) for number in ids)
            statements = (
                f"SELECT pg_advisory_unlock_all(); SET statement_timeout = {wait_ms};"
                f" SELECT pg_advisory_lock(k) FROM unnest('{{{numbers}}}'::bigint[]) AS k;"
            )
            wait = seconds + self._budget
            await answered(self._wait(connection, statements, ids, wait), wait)
        except asyncpg.DeadlockDetectedError:
            raise self._timed_out(ids) from None  # keys taken so far go with the reset
        except asyncpg.PostgresError as exc:  # e.g. the lock table is full
            raise BackendUnavailable("postgres", type(exc).__name__) from exc
        except LockTimeout:
            raise
        except BaseException:
            # given up mid-query (a frozen server, a cancelled caller): the session's state is
            # unknown, so it ends here, and its locks with it
            connection.terminate()
            raise

    async def _wait(
        self, connection: asyncpg.Connection, statements: str, ids: list[int], seconds: float
    ) -> None:
        try:
            await connection.execute(statements, timeout=seconds)
        except asyncpg.QueryCanceledError:  # the statement_timeout: other holders kept them
            raise self._timed_out(ids) from None  # keys taken so far go with the reset

    async def _release(self, connection: asyncpg.Connection) -> None:
        """Back to the pool without its locks (reset), or closed if the reset fails."""
        try:
            await self._pool.release(connection, timeout=self._budget)
        except Exception:  # the pool closed the connection: the server drops its locks
            log.warning("PostgreSQL lock connection closed instead of reset", exc_info=True)
