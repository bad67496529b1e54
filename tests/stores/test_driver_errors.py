"""Each store speaks the service's errors, never its driver's: a backend that does not answer is
BackendUnavailable (naming it), an input the vector store refuses is BackendRefused."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from somamemory.errors import BackendRefused, BackendUnavailable, LockTimeout, StartupError
from somamemory.models import Memory, NewMemory
from somamemory.stores.fallback_locks import FallbackLocks
from somamemory.stores.inprocess import InProcessLocks
from somamemory.stores.milvus import MilvusVectorStore
from somamemory.stores.outbox import PostgresOutbox
from somamemory.stores.postgres import PostgresStore
from somamemory.stores.postgres_pool import create_pool
from somamemory.stores.redis import RedisCache, RedisLocks, RedisStore
from somamemory.stores.redis_client import create_client, open_client

from ..conftest import REDIS_HOST, REDIS_PORT, free_port

DIM = 8


async def test_a_postgresql_that_does_not_answer_is_unavailable(database_url: str) -> None:
    closed = f"postgresql://postgres@127.0.0.1:{free_port()}/test"
    with pytest.raises(BackendUnavailable, match="postgres is unavailable"):
        await create_pool(closed, min_size=1, max_size=1, timeout=2)

    pool = await create_pool(database_url, min_size=1, max_size=1, timeout=5)
    store, outbox = PostgresStore(pool), PostgresOutbox(pool)
    await pool.close()  # every call now fails in the driver
    new = NewMemory("ns", "1.0", "episodic", {"text": "x"}, 0.0)
    for call in (store.put(new), store.get("ns", "1.0"), store.ping(), outbox.backlog()):
        with pytest.raises(BackendUnavailable) as caught:
            await call
        assert caught.value.backend == "postgres"


async def test_a_database_that_does_not_exist_is_a_startup_error(database_url: str) -> None:
    missing = database_url.rsplit("/", 1)[0] + f"/missing_{uuid.uuid4().hex[:8]}"
    with pytest.raises(StartupError, match="does not exist"):
        await create_pool(missing, min_size=1, max_size=1, timeout=5)


async def test_a_redis_that_does_not_answer_is_unavailable() -> None:
    port = free_port()
    with pytest.raises(BackendUnavailable, match="redis is unavailable"):
        await open_client("127.0.0.1", port, password=None, db=0, timeout=1)
    client = create_client("127.0.0.1", port, password=None, db=0, timeout=1)
    locks = RedisLocks(client, prefix="p", timeout=1)
    cache = RedisCache(client, prefix="p", ttl_seconds=60)
    store = RedisStore(client, prefix="p", locks=locks)
    try:
        for call in (cache.get("ns", "1.0"), cache.invalidate("ns", "1.0"), store.ping()):
            with pytest.raises(BackendUnavailable) as caught:
                await call
            assert caught.value.backend == "redis"
        with pytest.raises(BackendUnavailable):
            async with locks.hold("k"):
                pass
    finally:
        await client.aclose()


async def test_locks_fall_back_when_redis_is_away_but_not_when_keys_are_busy() -> None:
    away = create_client("127.0.0.1", free_port(), password=None, db=0, timeout=1)
    try:
        fallback = FallbackLocks(RedisLocks(away, prefix="p", timeout=1), InProcessLocks())
        async with fallback.hold_many(["a", "b"]):
            pass  # Redis does not answer: the in-process locks hold the keys instead
    finally:
        await away.aclose()

    prefix = f"soma-test-busy-{uuid.uuid4().hex[:8]}"
    client = create_client(REDIS_HOST, REDIS_PORT, password=None, db=0, timeout=2)
    try:
        holder = RedisLocks(client, prefix=prefix, timeout=5)
        waiter = FallbackLocks(RedisLocks(client, prefix=prefix, timeout=0.2), InProcessLocks())
        async with holder.hold("k"):
            with pytest.raises(LockTimeout, match="not acquired"):
                async with waiter.hold("k"):
                    pass
    finally:
        await client.aclose()


async def test_a_vector_milvus_refuses_is_refused_not_unavailable(tmp_path: Path) -> None:
    store = MilvusVectorStore.connect(
        str(tmp_path / "v.db"), collection="refusals", dim=DIM, token=None, timeout=5
    )
    try:
        now = datetime.now(UTC)
        memory = Memory("ns", "1.0", "episodic", {"text": "x"}, 0.0, 1, now, now)
        with pytest.raises(BackendRefused, match="dim") as caught:
            await store.upsert([(memory, [1.0, 2.0])])  # two dimensions, not eight
        assert caught.value.backend == "milvus"
        await store.ping()  # the store answers: a refusal is not an outage
    finally:
        await store.close()
