"""Client vectors kept canonically in PostgreSQL: each row gets its own vector, exactly as
float32, in a batch mixing memories with and without one."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import numpy as np
import pytest

from somamemory.models import NewMemory
from somamemory.stores.postgres import PostgresStore
from somamemory.stores.postgres_pool import create_pool


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    created = await create_pool(database_url, min_size=1, max_size=2, timeout=5)
    yield created
    await created.close()


async def test_a_batch_keeps_each_memory_s_own_vector(pool: asyncpg.Pool, namespace: str) -> None:
    rng = np.random.default_rng(4)
    first, second, third, fourth = (rng.normal(size=384).tolist() for _ in range(4))
    batch = [
        NewMemory(namespace, "1.0", "episodic", {"n": 1}, 0.0, vector=first),
        NewMemory(namespace, "2.0", "episodic", {"n": 2}, 0.0),  # no vector
        NewMemory(namespace, "3.0", "episodic", {"n": 3}, 0.0, vector=second[:7]),
        NewMemory(namespace, "4.0", "episodic", {"n": 4}, 0.0, vector=fourth),
        NewMemory(namespace, "1.0", "episodic", {"n": 5}, 0.0, vector=third),  # overwrites 1.0
    ]
    await PostgresStore(pool).put_many(batch)
    rows = {
        row["coord"]: row["vector"]
        for row in await pool.fetch(
            "SELECT coord, vector FROM memories WHERE namespace = $1", namespace
        )
    }
    assert rows["2.0"] is None
    assert rows["3.0"] == np.float32(second[:7]).tolist()
    assert rows["4.0"] == np.float32(fourth).tolist()
    assert rows["1.0"] == np.float32(third).tolist()
