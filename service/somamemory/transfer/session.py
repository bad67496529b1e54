"""What export, import and reindex run on: the settings of ``serve``, opened for one command.

With ``POSTGRES_URL`` set, the external PostgreSQL. Without it, the embedded one under the data
directory: started for the command and stopped after, unless a ``serve`` already runs on it. In
that case milvus-lite belongs to that service too, so the command works on PostgreSQL alone and
leaves the vectors to the running service's reconciler (the vector outbox tells it what to do).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from .. import embedded, schema
from ..backends import Backends, open_backends
from ..errors import BackendUnavailable, StartupError
from ..metrics import Metrics
from ..reconciler import Reconciler
from ..settings import Settings
from ..stores.postgres import PostgresStore
from ..stores.postgres_analyze import Analyzer
from ..stores.postgres_pool import Pool, connection, create_pool
from ..stores.postgres_transfer import PostgresTransfer
from ..writes import WritePath


@dataclass
class Vectors:
    """The service's write path and reconciler, for commands that write vectors themselves."""

    backends: Backends
    writes: WritePath
    reconciler: Reconciler


@dataclass
class Session:
    transfer: PostgresTransfer
    vectors: Vectors | None  # None: PostgreSQL only; a running service indexes from the outbox


def serve_running(settings: Settings) -> bool:
    """Whether a ``serve`` holds this data directory's embedded PostgreSQL and milvus-lite."""
    return not settings.postgres_configured and embedded.is_running(settings.data_dir)


@contextlib.asynccontextmanager
async def postgres_only(settings: Settings) -> AsyncIterator[Session]:
    """PostgreSQL alone (export, or vectors left to a running service)."""
    server = None
    if settings.postgres_configured:
        url = settings.postgres_url
    else:
        already_running = embedded.is_running(settings.data_dir)
        server = await asyncio.to_thread(embedded.start_embedded_postgres, settings.data_dir)
        url = await embedded.ensure_database(server.get_uri())
        await asyncio.to_thread(schema.upgrade_to_head, url)  # the embedded default migrates
        if already_running:
            server = None  # the running service's: leave it running
    try:
        pool = await _pool(settings, url)
        analyzer = Analyzer(pool, timeout=settings.postgres_timeout_seconds)
        try:
            async with connection(pool) as held:
                await schema.require_head(held)
            yield Session(PostgresTransfer(pool, analyzer=analyzer), None)
        finally:
            await analyzer.close()
            await pool.close()
    finally:
        if server is not None:
            await asyncio.to_thread(embedded.stop_embedded_postgres, server, settings.data_dir)


@contextlib.asynccontextmanager
async def with_vectors(settings: Settings) -> AsyncIterator[Session]:
    """Every backend, as ``serve`` opens them, with the write path and a reconciler that takes
    outbox entries at once (no writes of this process are in flight)."""
    backends = await open_backends(settings)
    try:
        pool = backends.postgres_pool
        if pool is None:
            raise StartupError("PostgreSQL is unreachable; export, import and reindex need it")
        metrics = Metrics()
        writes = WritePath(
            live=backends.live,
            vectors=backends.vectors,
            embedder=backends.embedder,
            metrics=metrics,
            locks=backends.locks,
        )
        reconciler = Reconciler(
            live=backends.live,
            vectors=backends.vectors,
            embedder=backends.embedder,
            metrics=metrics,
            settle=writes.settle,
            grace_seconds=0.0,
        )
        store = backends.live.store
        analyzer = store.analyzer if isinstance(store, PostgresStore) else None
        transfer = PostgresTransfer(pool, analyzer=analyzer)
        yield Session(transfer, Vectors(backends, writes, reconciler))
        await writes.flush()
    finally:
        await backends.close()


def opened(settings: Settings, *, vectors: bool) -> contextlib.AbstractAsyncContextManager[Session]:
    """The session a command needs: with the vector store when it writes vectors and may."""
    if vectors and not serve_running(settings):
        return with_vectors(settings)
    return postgres_only(settings)


async def _pool(settings: Settings, url: str) -> Pool:
    try:
        return await create_pool(
            url, min_size=1, max_size=4, timeout=settings.connect_timeout_seconds
        )
    except BackendUnavailable as exc:
        raise StartupError(f"PostgreSQL at the configured URL is unreachable: {exc}") from exc
