"""The PostgreSQL store analyses ``memories`` itself after bulk writes (``postgres_analyze.py``),
so keyword search uses its GIN index without waiting for autovacuum.

Each test runs on a fresh database whose autovacuum is off for ``memories``: an analyze seen
there is the store's own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime

import asyncpg
import pytest

from somamemory.filters import SearchFilter
from somamemory.models import NewMemory
from somamemory.stores.postgres import PostgresStore
from somamemory.stores.postgres_analyze import MINIMUM_ROWS, Analyzer
from somamemory.stores.postgres_keyword import INDEX_NAME, query_text, search_statement
from somamemory.stores.postgres_pool import create_pool
from somamemory.stores.postgres_transfer import MemoryHistory, PostgresTransfer, VersionRecord

from ..conftest import migrated_database

_ANALYZES = "SELECT analyze_count FROM pg_stat_user_tables WHERE relname = 'memories'"


@pytest.fixture(scope="module")
def fresh_url() -> Iterator[str]:
    with migrated_database() as url:
        yield url


@pytest.fixture
async def store(fresh_url: str) -> AsyncIterator[PostgresStore]:
    pool = await create_pool(fresh_url, min_size=1, max_size=4, timeout=10)
    await pool.execute("TRUNCATE memories, memory_versions, pending_vectors CASCADE")
    await pool.execute("ALTER TABLE memories SET (autovacuum_enabled = false)")
    opened = PostgresStore(pool, timeout=30)
    yield opened
    await opened.close()


def _batch(start: int, count: int) -> list[NewMemory]:
    return [
        NewMemory(
            namespace="analyze",
            coord=f"{i}.0",
            memory_type="episodic",
            payload={"text": f"deploy failed with error E{i} on host {i % 37}"},
            importance=0.5,
        )
        for i in range(start, start + count)
    ]


async def _until(condition: Callable[[], Awaitable[bool]], seconds: float = 60.0) -> None:
    """Wait for ``condition`` (generous deadline: the analyze runs in the background)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.1)


async def _analyze_count(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval(_ANALYZES) or 0)


async def test_bulk_writes_past_the_threshold_analyse_memories(store: PostgresStore) -> None:
    pool = store.pool
    before = await _analyze_count(pool)
    for start in range(0, 5 * MINIMUM_ROWS, 500):
        await store.put_many(_batch(start, 500))

    async def analysed() -> bool:
        return await _analyze_count(pool) > before and store.analyzer.analyzed > 0

    await _until(analysed)

    statement, params = search_statement(SearchFilter(namespace="analyze"))
    rows = await pool.fetch("EXPLAIN " + statement, query_text("deploy error E4711"), 10, *params)
    assert INDEX_NAME in "\n".join(row[0] for row in rows)


async def test_few_writes_do_not_analyse(store: PostgresStore) -> None:
    await store.put_many(_batch(0, MINIMUM_ROWS - 1))
    assert store.analyzer.analyzed == 0


async def test_close_cancels_a_running_analyze(fresh_url: str) -> None:
    pool = await create_pool(fresh_url, min_size=1, max_size=4, timeout=10)
    opened = PostgresStore(pool, timeout=30)
    blocker = await asyncpg.connect(fresh_url)
    try:
        # ANALYZE waits behind this lock: close must not wait for it
        transaction = blocker.transaction()
        await transaction.start()
        await blocker.execute("LOCK TABLE memories IN SHARE UPDATE EXCLUSIVE MODE")
        opened.analyzer.wrote(10 * MINIMUM_ROWS)

        async def waiting() -> bool:
            await blocker.execute("SELECT pg_stat_clear_snapshot()")  # inside a transaction
            return bool(
                await blocker.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'ANALYZE%'"
                    " AND wait_event_type = 'Lock'"
                )
            )

        await _until(waiting)
        await opened.close()  # cancels the ANALYZE, then the pool closes
        assert opened.analyzer.analyzed == 0
        await transaction.rollback()
    finally:
        await blocker.close()


async def test_an_import_past_the_threshold_analyses_memories(store: PostgresStore) -> None:
    pool = store.pool
    before = await _analyze_count(pool)
    analyzer = Analyzer(pool, timeout=30)
    transfer = PostgresTransfer(pool, analyzer=analyzer)
    moment = datetime.now(UTC)
    histories = [
        MemoryHistory(
            "analyze",
            memory.coord,
            "episodic",
            [VersionRecord(1, "episodic", memory.payload, 0.5, moment, moment)],
        )
        for memory in _batch(0, 2 * MINIMUM_ROWS)
    ]
    try:
        await transfer.import_histories(histories)

        async def analysed() -> bool:
            return await _analyze_count(pool) > before and analyzer.analyzed > 0

        await _until(analysed)
    finally:
        await analyzer.close()


async def test_a_failed_analyze_is_logged_not_raised(
    fresh_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    pool = await create_pool(fresh_url, min_size=1, max_size=1, timeout=10)
    await pool.close()  # every acquire fails from here
    analyzer = Analyzer(pool, timeout=5)
    with caplog.at_level(logging.WARNING, logger="somamemory.stores.postgres_analyze"):
        analyzer.wrote(2 * MINIMUM_ROWS)  # returns at once: the analyze runs in the background

        async def logged() -> bool:
            return any("ANALYZE memories failed" in r.getMessage() for r in caplog.records)

        await _until(logged)
    assert analyzer.analyzed == 0
    await analyzer.close()
