"""Everything that lives as long as the service: backends, the write path, background tasks.

``running(settings, metrics)`` opens them in order and closes them in reverse: on shutdown the
batcher stops accepting and writes what it holds before any backend closes (SIGTERM drains).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from typing import Any

from .access import Access
from .backends import MODES, Backends, open_backends
from .batching import Batcher
from .decay import DecayPolicy
from .expiry import ExpiryPolicy, Sweeper
from .failover import PostgresFailover
from .history import HistoryPurge
from .metrics import Metrics
from .models import NewMemory
from .policies import Policies
from .reconciler import Reconciler
from .reembed.rebuild import Rebuild
from .service import MemoryService
from .settings import Settings
from .stores.postgres_reembed import PostgresReembed
from .writes import WritePath, Written

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    backends: Backends
    service: MemoryService
    reconciler: Reconciler
    sweeper: Sweeper


@contextlib.asynccontextmanager
async def _background(coroutine: Coroutine[Any, Any, None], name: str) -> AsyncIterator[None]:
    task = asyncio.create_task(coroutine, name=name)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _rebuild(settings: Settings, backends: Backends, metrics: Metrics) -> Rebuild | None:
    """The rebuild of a changed embedding model's collection, if one is due, started: search
    answers from the previous collection until it switches (``reembed/``)."""
    plan, previous, collections = backends.plan, backends.previous_vectors, backends.collections
    if plan is None or plan.previous is None or previous is None or collections is None:
        return None
    pool = backends.postgres_pool
    rebuild = Rebuild(
        live=backends.live,
        collections=collections,
        plan=plan,
        target=backends.vectors,
        target_identity=backends.embedder.info,
        previous=previous,
        reads=PostgresReembed(pool, timeout=settings.postgres_timeout_seconds) if pool else None,
        metrics=metrics,
    )
    await rebuild.start(backends.embedder)
    return rebuild


async def _rebuilding(rebuild: Rebuild | None) -> None:
    if rebuild is not None:
        await rebuild.run()


def _report(backends: Backends, metrics: Metrics) -> None:
    metrics.set_mode(backends.live.mode, MODES)
    metrics.backend_up.labels(backend="postgres").set(backends.live.postgres != "down")
    metrics.backend_up.labels(backend="redis").set(backends.redis != "down")
    metrics.backend_up.labels(backend=backends.vectors.name).set(1)


@contextlib.asynccontextmanager
async def running(settings: Settings, metrics: Metrics) -> AsyncIterator[Runtime]:
    """Open the service's world; close it (draining writes first) on exit."""
    backends = await open_backends(settings)
    try:
        _report(backends, metrics)
        writes = WritePath(
            live=backends.live,
            vectors=backends.vectors,
            embedder=backends.embedder,
            metrics=metrics,
            locks=backends.locks,
        )
        batcher: Batcher[NewMemory, Written] | None = None
        if settings.enable_batch_upsert:
            batcher = Batcher(
                writes.write_in_order,
                size=settings.batch_size,
                flush_ms=settings.batch_flush_ms,
                on_flush=metrics.observe_batch,
                in_flight=settings.batch_in_flight,
            )
        service = MemoryService(
            live=backends.live,
            locks=backends.locks,
            vectors=backends.vectors,
            embedder=backends.embedder,
            metrics=metrics,
            writes=writes,
            deployment=backends.deployment(),
            batcher=batcher,
            max_payload_bytes=settings.max_payload_bytes,
            max_top_k=settings.max_top_k,
            rate_limiter=backends.rate_limiter,
            access=Access(backends.live, cache_seconds=settings.token_cache_seconds),
            expiry=ExpiryPolicy(
                default_ttl_seconds=settings.default_ttl_seconds,
                max_ttl_seconds=settings.max_ttl_seconds,
            ),
            decay=DecayPolicy(
                half_life_seconds=settings.decay_half_life_seconds,
                floor=settings.decay_floor,
                weight_similarity=settings.rank_weight_similarity,
                weight_importance=settings.rank_weight_importance,
                weight_recency=settings.rank_weight_recency,
                recency_half_life_seconds=settings.recency_half_life_seconds,
            ),
            max_memories=settings.max_memories,
            policies=Policies(backends.live, cache_seconds=settings.policy_cache_seconds),
        )
        sweeper = Sweeper(
            live=backends.live,
            vectors=backends.vectors,
            metrics=metrics,
            clock=lambda: service.clock(),  # the service's, even when a test swaps it
            batch_size=settings.sweep_batch_size,
            max_batches=settings.sweep_max_batches,
        )
        reconciler = Reconciler(
            live=backends.live,
            vectors=backends.vectors,
            embedder=backends.embedder,
            metrics=metrics,
            settle=writes.settle,
            # writes in flight settle their own entries within a flush interval or two
            grace_seconds=max(5.0, 4 * settings.milvus_flush_interval_seconds),
        )
        rebuild = await _rebuild(settings, backends, metrics)
        service.rebuild = rebuild
        failover = PostgresFailover(settings=settings, backends=backends, metrics=metrics)
        purge = HistoryPurge(
            backends.live, retention_seconds=settings.deleted_history_retention_seconds
        )
        log.info(
            "SomaMemory ready",
            extra={
                "mode": backends.live.mode,
                "postgres": backends.live.postgres,
                "redis": backends.redis,
            },
        )
        async with (
            _background(writes.maintain(settings.milvus_flush_interval_seconds), "vector-flush"),
            _background(reconciler.run_forever(settings.reconcile_interval_seconds), "reconciler"),
            _background(failover.run_forever(settings.backend_check_seconds), "failover"),
            _background(sweeper.run_forever(settings.sweep_interval_seconds), "expiry-sweeper"),
            _background(
                service.reads.run_forever(
                    lambda: backends.live.store, settings.access_flush_seconds
                ),
                "read-log",
            ),
            _background(purge.run_forever(), "history-purge"),
            _background(_rebuilding(rebuild), "reembedding"),
        ):
            try:
                yield Runtime(backends, service, reconciler, sweeper)
            finally:
                if batcher is not None:
                    await batcher.close()
                with contextlib.suppress(Exception):  # what is left, the reconciler redoes
                    await writes.flush()
    finally:
        await backends.close()
