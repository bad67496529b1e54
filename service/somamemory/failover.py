"""PostgreSQL watched while running (DESIGN section 4): when it stops answering the service goes
Redis-only (writes journaled in Redis); when it answers again the journal is replayed into it,
in order and exactly once, and the service goes back to normal.

Writes pass a gate that the switch closes, so none lands on the store being swapped out.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from . import schema
from .backends import MODES, Backends, redis_only_store
from .metrics import Metrics
from .reconciler import Reconciler
from .replay import replay_journal
from .service import MemoryService
from .settings import Settings
from .stores.outbox import NoOutbox, PostgresOutbox
from .stores.postgres import PostgresStore, create_pool
from .stores.redis import RedisCache
from .writes import TRANSIENT, WritePath

log = logging.getLogger(__name__)


class PostgresFailover:
    """Switches between normal and Redis-only mode as PostgreSQL comes and goes."""

    def __init__(
        self,
        *,
        settings: Settings,
        backends: Backends,
        service: MemoryService,
        writes: WritePath,
        reconciler: Reconciler,
        metrics: Metrics,
    ) -> None:
        self._settings = settings
        self._backends = backends
        self._service = service
        self._writes = writes
        self._reconciler = reconciler
        self._metrics = metrics

    @property
    def applies(self) -> bool:
        """Only an external PostgreSQL with a Redis to fall back on can fail over."""
        return self._settings.postgres_configured and self._backends.redis_client is not None

    async def check(self) -> None:
        """One look at PostgreSQL, switching mode if it changed."""
        if self._backends.mode == "normal":
            try:
                await self._backends.store.ping()
            except (*TRANSIENT, asyncpg.PostgresError):
                await self._to_redis_only()
        elif self._backends.mode == "redis-only":
            pool = await self._pool()
            if pool is not None:
                await self._to_postgres(pool)

    async def run_forever(self, interval: float) -> None:
        if not self.applies:
            return
        while True:
            await asyncio.sleep(interval)
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("PostgreSQL check failed", exc_info=True)

    async def _pool(self) -> asyncpg.Pool | None:
        pool = self._backends.postgres_pool
        try:
            if pool is None:
                pool = await create_pool(
                    self._settings.postgres_url,
                    min_size=self._settings.postgres_pool_min,
                    max_size=self._settings.postgres_pool_max,
                    timeout=self._settings.connect_timeout_seconds,
                )
                self._backends.postgres_pool = pool
                self._backends.on_close(pool.close)
            async with pool.acquire(timeout=self._settings.connect_timeout_seconds) as connection:
                await schema.require_head(connection)
        except (*TRANSIENT, asyncpg.PostgresError):
            return None
        return pool

    async def _to_redis_only(self) -> None:
        client = self._backends.redis_client
        assert client is not None
        async with self._writes.gate.closed():
            self._use(redis_only_store(client, self._settings), None, "redis-only", "down")
        log.warning("PostgreSQL stopped answering: Redis-only mode, writes journaled in Redis")

    async def _to_postgres(self, pool: asyncpg.Pool) -> None:
        store = redis_only_store(self._backends.redis_client, self._settings)  # type: ignore[arg-type]
        journal = store._journal
        assert journal is not None
        touched = await replay_journal(journal, pool)  # most of it, while writes still go on
        async with self._writes.gate.closed():
            touched |= await replay_journal(journal, pool)  # what came in meanwhile
            cache = RedisCache(
                self._backends.redis_client,  # type: ignore[arg-type]
                prefix=self._settings.redis_key_prefix,
                ttl_seconds=self._settings.cache_ttl_seconds,
            )
            await cache.invalidate_many(sorted(touched))  # entries from before the outage
            self._use(PostgresStore(pool), cache, "normal", "external", PostgresOutbox(pool))
        log.warning("PostgreSQL answers again: journal replayed, back to normal mode")

    def _use(self, store, cache, mode: str, postgres: str, outbox=None) -> None:  # type: ignore[no-untyped-def]
        """Point every user of the stores at the new ones, in one step (no await)."""
        outbox = outbox or NoOutbox()
        for holder in (self._backends, self._service, self._writes):
            holder.store = store
            holder.cache = cache
        self._backends.outbox = outbox
        self._writes.outbox = outbox
        self._reconciler.use(store, outbox)
        self._backends.mode = mode
        self._backends.postgres = postgres
        self._metrics.set_mode(mode, MODES)
        self._metrics.backend_up.labels(backend="postgres").set(postgres != "down")
