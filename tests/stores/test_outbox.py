"""The vector outbox on the real PostgreSQL: what clears it, what re-queues, what parks."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from somamemory.models import NewMemory
from somamemory.stores.outbox import PostgresOutbox
from somamemory.stores.postgres import PostgresStore
from somamemory.stores.postgres_pool import create_pool


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    created = await create_pool(database_url, min_size=1, max_size=2, timeout=5)
    yield created
    await created.close()


async def test_one_coordinate_written_many_times_in_a_window_clears_at_once(
    pool: asyncpg.Pool, namespace: str
) -> None:
    store, outbox = PostgresStore(pool), PostgresOutbox(pool)
    new = NewMemory(namespace, "1.0", "episodic", {"text": "again"}, 0.0)
    written = await store.put_many([new, new, new, new])
    assert [m.version for m in written] == [1, 2, 3, 4]
    # the vector store now holds the last version: every entry of the window settles together
    await outbox.done([(namespace, m.coord, m.version) for m in written])
    left = await pool.fetch("SELECT version FROM pending_vectors WHERE namespace = $1", namespace)
    assert left == []


async def test_a_vector_written_for_an_old_version_is_owed_again(
    pool: asyncpg.Pool, namespace: str
) -> None:
    store, outbox = PostgresStore(pool), PostgresOutbox(pool)
    new = NewMemory(namespace, "2.0", "episodic", {"text": "moved on"}, 0.0)
    await store.put_many([new, new])
    await outbox.done([(namespace, "2.0", 1)])
    left = await pool.fetch("SELECT version FROM pending_vectors WHERE namespace = $1", namespace)
    assert [row["version"] for row in left] == [2]
