"""Readiness under load: a replica whose backends answer its requests reports itself ready,
even when a ping would have to wait behind those requests; a silent backend still fails it."""

from __future__ import annotations

import asyncio
from pathlib import Path

from somamemory.health import ANSWERED_RECENTLY, ready
from somamemory.live import LiveStores
from somamemory.stores.milvus import MilvusVectorStore
from somamemory.stores.outbox import NoOutbox
from somamemory.stores.postgres import PostgresStore
from somamemory.stores.postgres_pool import create_pool


async def test_a_busy_pool_still_reports_ready_while_requests_are_answered(
    database_url: str, tmp_path: Path
) -> None:
    pool = await create_pool(database_url, min_size=1, max_size=1, timeout=5)
    store = PostgresStore(pool, timeout=0.5)
    vectors = MilvusVectorStore.connect(
        str(tmp_path / "v.db"), collection="ready", dim=8, token=None, timeout=5
    )
    live = LiveStores(store, None, NoOutbox(), "normal", "external")  # type: ignore[arg-type]
    try:
        assert await store.get("ready", "1") is None  # a request answered just now
        await vectors.ping()
        async with pool.acquire():  # every connection busy: a ping would miss its budget
            assert await ready(live, vectors)
            await asyncio.sleep(ANSWERED_RECENTLY + 0.1)  # no request answered since
            assert not await ready(live, vectors)
        assert await ready(live, vectors)  # a connection is free again: the ping answers
    finally:
        await vectors.close()
        await pool.close()
