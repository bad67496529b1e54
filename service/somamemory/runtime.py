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
from .failover import PostgresFailover
from .metrics import Metrics
from .models import NewMemory
from .reconciler import Reconciler
from .service import MemoryService
from .settings import Settings
from .writes import WritePath, Written

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    backends: Backends
    service: MemoryService
    reconciler: Reconciler


@contextlib.asynccontextmanager
async def _background(coroutine: Coroutine[Any, Any, None], name: str) -> AsyncIterator[None]:
    task = asyncio.create_task(coroutine, name=name)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


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
        failover = PostgresFailover(settings=settings, backends=backends, metrics=metrics)
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
        ):
            try:
                yield Runtime(backends, service, reconciler)
            finally:
                if batcher is not None:
                    await batcher.close()
                with contextlib.suppress(Exception):  # what is left, the reconciler redoes
                    await writes.flush()
    finally:
        await backends.close()
