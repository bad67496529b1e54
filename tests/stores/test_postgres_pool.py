"""The store's PostgreSQL pool hands back connections as clean as new ones."""

from __future__ import annotations

import asyncio

from somamemory.backends import store_pool
from somamemory.settings import Settings


async def test_a_connection_released_inside_a_transaction_comes_back_rolled_back(
    database_url: str,
) -> None:
    """A request cancelled mid-transaction leaves nothing behind for the next one: its writes
    are rolled back and the connection is out of the transaction (the store's pool skips
    asyncpg's session reset, so this must still hold)."""
    pool = await store_pool(database_url, Settings(postgres_pool_min=1, postgres_pool_max=1))
    try:
        async with pool.acquire() as held:
            await held.execute("CREATE TEMP TABLE IF NOT EXISTS left_open (n int)")
        started = asyncio.Event()

        async def cancelled_midway() -> None:
            async with pool.acquire() as held:
                transaction = held.transaction()
                await transaction.start()
                await held.execute("INSERT INTO left_open VALUES (1)")
                started.set()
                await asyncio.sleep(30)

        task = asyncio.create_task(cancelled_midway())
        await started.wait()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        async with pool.acquire() as held:  # the same (only) connection
            assert not held.is_in_transaction()
            assert await held.fetchval("SELECT count(*) FROM left_open") == 0
    finally:
        await pool.close()
