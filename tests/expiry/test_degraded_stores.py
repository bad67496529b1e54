"""Expiry in the degraded modes' stores: Redis-only (real Redis) and in-process never answer
an expired memory either; the in-process store sweeps, Redis-only mode keeps its expired
memories (with their expiry, journaled) until replay hands them to PostgreSQL's sweeper."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from somamemory.backends import redis_only_store
from somamemory.models import NewMemory
from somamemory.settings import Settings
from somamemory.stores.inprocess import InProcessStore
from somamemory.stores.protocols import KeyValueStore
from somamemory.stores.redis_client import open_client

from ..conftest import REDIS_HOST, REDIS_PORT

NOW = datetime.now(UTC)


def _writes() -> list[NewMemory]:
    soon = NOW + timedelta(seconds=60)
    return [
        NewMemory(
            "ns",
            "1.0",
            "episodic",
            {"text": "a"},
            0.0,
            expires_at=soon,
            ttl_seconds=60,
            refresh_on_read=True,
        ),
        NewMemory("ns", "2.0", "semantic", {"text": "b"}, 0.0),
    ]


async def _check(store: KeyValueStore) -> None:
    await store.put_many(_writes())
    assert (await store.get("ns", "1.0", now=NOW)) is not None
    assert (await store.counts("ns", now=NOW)).total == 2
    later = NOW + timedelta(seconds=61)
    assert await store.get("ns", "1.0", now=later) is None
    assert set(await store.get_many("ns", ["1.0", "2.0"], now=later)) == {"2.0"}
    assert await store.versions("ns", "1.0", now=later) == []
    counts = await store.counts("ns", now=later)
    assert (counts.episodic, counts.semantic) == (0, 1)


def test_the_in_process_store_filters_refreshes_and_sweeps_expired_memories() -> None:
    async def run() -> None:
        store = InProcessStore()
        await _check(store)
        refreshed = await store.refresh_expiry("ns", "1.0", NOW + timedelta(seconds=30))
        assert refreshed == NOW + timedelta(seconds=90)
        assert await store.sweep_expired(NOW + timedelta(seconds=91), 10) == [("ns", "1.0")]
        assert set(await store.get_many("ns", ["1.0", "2.0"], now=NOW)) == {"2.0"}

    asyncio.run(run())


def test_the_redis_only_store_never_answers_an_expired_memory(own_redis_prefix: str) -> None:
    async def run() -> None:
        client = await open_client(REDIS_HOST, REDIS_PORT, password=None, db=0, timeout=2.0)
        try:
            settings = Settings.model_validate(
                {"redis_key_prefix": own_redis_prefix, "postgres_url": "postgresql://x@127.0.0.1/x"}
            )
            store = redis_only_store(client, settings)
            await _check(store)
            assert store._journal is not None  # the expiry travels to PostgreSQL with replay
            (entry,) = [e for e in await store._journal.read("0", 10) if e.memory.coord == "1.0"]
            assert entry.memory.expires_at == NOW + timedelta(seconds=60)
            assert entry.memory.refresh_on_read and entry.memory.ttl_seconds == 60
        finally:
            await client.aclose()

    asyncio.run(run())
