"""The vector flush on milvus-lite (the embedded default): a shutdown's final flush leaves no
vector owed, even while a periodic flush is in progress (real PostgreSQL and milvus-lite)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable

from somamemory.metrics import Metrics
from somamemory.runtime import running
from somamemory.settings import Settings

_OWED = "SELECT count(*) FROM pending_vectors WHERE namespace = $1"


async def test_a_final_flush_during_a_periodic_one_leaves_nothing_owed(
    make_settings: Callable[..., Settings],
) -> None:
    """The shutdown flushes once more while the periodic flush task may be mid-flush; that
    task is then cancelled. Its entries must not be left owed (SIGTERM drains fully)."""
    # hash embeddings: nothing here judges meaning; no periodic flush of its own meanwhile
    settings = make_settings(force_hash_embeddings=True, milvus_flush_interval_seconds=3600)
    namespace = f"flush-{uuid.uuid4().hex[:8]}"
    async with running(settings, Metrics()) as runtime:
        service, pool = runtime.service, runtime.backends.postgres_pool
        assert pool is not None

        async def owed() -> int:  # this test's entries (the session's database is shared)
            count: int = await pool.fetchval(_OWED, namespace)
            return count

        for i in range(40):
            await service.store_memory(namespace, f"{i},1", {"text": f"note {i}"})
        assert await owed() == 40  # written, not yet durable: still owed

        periodic = asyncio.create_task(service.writes.flush())
        await asyncio.sleep(0)  # it has taken the owed entries and waits on milvus-lite
        await service.writes.flush()  # the shutdown's final flush
        periodic.cancel()  # as leaving the runtime cancels the background tasks
        with contextlib.suppress(asyncio.CancelledError):
            await periodic
        assert await owed() == 0
