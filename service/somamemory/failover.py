"""PostgreSQL watched while running: when it stops answering the service goes
Redis-only (writes journaled in Redis); when it answers again the journal is replayed into it,
in order and exactly once, and the service goes back to normal.

A switch changes one object, the backends' ``LiveStores``, in one step, with its gate closed
so that no write lands on the store being swapped out; everyone else reads the stores there.
"""

from __future__ import annotations

import asyncio
import logging

from . import schema
from .backends import (
    MODES,
    Backends,
    postgres_stores,
    redis_cache,
    redis_journal,
    redis_only_store,
    store_pool,
)
from .errors import BackendUnavailable
from .metrics import Metrics
from .replay import replay_journal
from .settings import Settings
from .stores import Cache, GraphStore, KeyValueStore, PolicyStore, TokenStore
from .stores.outbox import NoOutbox, Outbox
from .stores.postgres_pool import Pool, answered, connection
from .stores.postgres_row_security import require_row_security
from .stores.redis_client import Client

log = logging.getLogger(__name__)


class PostgresFailover:
    """Switches between normal and Redis-only mode as PostgreSQL comes and goes."""

    def __init__(self, *, settings: Settings, backends: Backends, metrics: Metrics) -> None:
        self._settings = settings
        self._backends = backends
        self._live = backends.live
        self._metrics = metrics

    @property
    def applies(self) -> bool:
        """Only an external PostgreSQL with a Redis to fall back on can fail over."""
        return self._settings.postgres_configured and self._backends.redis_client is not None

    async def check(self) -> None:
        """One look at PostgreSQL, switching mode if it changed."""
        if self._live.mode == "normal":
            try:
                await self._live.store.ping()
            except BackendUnavailable:
                await self._to_redis_only()
        elif self._live.mode == "redis-only":
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

    @property
    def _redis(self) -> Client:
        client = self._backends.redis_client
        assert client is not None, "failover applies only with Redis"
        return client

    async def _pool(self) -> Pool | None:
        pool = self._backends.postgres_pool
        try:
            if pool is None:
                pool = await store_pool(self._settings.postgres_url, self._settings)
                self._backends.postgres_pool = pool
                self._backends.on_close(pool.close)
            # bounded: a frozen server hands out connections that never answer
            await answered(self._require_head(pool), self._settings.postgres_timeout_seconds)
        except BackendUnavailable:
            return None
        return pool

    async def _require_head(self, pool: Pool) -> None:
        async with connection(pool, timeout=self._settings.connect_timeout_seconds) as held:
            await schema.require_head(held)
            if self._settings.postgres_row_security:  # as at startup: never run unconfined
                await require_row_security(held)

    async def _to_redis_only(self) -> None:
        async with self._live.gate.closed():
            store = redis_only_store(self._redis, self._settings)
            self._switch(store, None, NoOutbox(), None, "down")
        log.warning("PostgreSQL stopped answering: Redis-only mode, writes journaled in Redis")

    async def _to_postgres(self, pool: Pool) -> None:
        journal = redis_journal(self._redis, self._settings)
        stores = postgres_stores(pool, self._settings)
        store = stores.store
        self._backends.on_close(store.analyzer.close)  # before the pool's (closed last first)
        touched = await replay_journal(journal, store)  # most of it, while writes still go on
        async with self._live.gate.closed():
            touched |= await replay_journal(journal, store)  # what came in meanwhile
            cache = redis_cache(self._redis, self._settings)
            await cache.invalidate_many(sorted(touched))  # entries from before the outage
            self._switch(
                store,
                cache,
                stores.outbox,
                stores.tokens,
                "external",
                stores.graph,
                stores.policies,
            )
        log.warning("PostgreSQL answers again: journal replayed, back to normal mode")

    def _switch(
        self,
        store: KeyValueStore,
        cache: Cache | None,
        outbox: Outbox,
        tokens: TokenStore | None,
        postgres: str,
        graph: GraphStore | None = None,
        policies: PolicyStore | None = None,
    ) -> None:
        """The one place the stores change (no await: in one step)."""
        mode = "normal" if postgres != "down" else "redis-only"
        self._live.switch(
            store=store,
            cache=cache,
            outbox=outbox,
            tokens=tokens,
            mode=mode,
            postgres=postgres,
            graph=graph,
            policies=policies,
        )
        self._metrics.set_mode(mode, MODES)
        self._metrics.backend_up.labels(backend="postgres").set(postgres != "down")
