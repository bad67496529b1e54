"""The PostgreSQL pool the store, the outbox and the journal replay share: how it is opened, and
which of its errors mean PostgreSQL is away."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypeAlias

import asyncpg

from ..errors import BackendUnavailable, StartupError
from .driver_errors import Kinds

Pool: TypeAlias = asyncpg.Pool

# The server went away or does not answer (yet): the same request may succeed later.
POSTGRES_DOWN: Kinds = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.exceptions.OperatorInterventionError,  # admin/crash shutdown mid-query
    asyncpg.exceptions.InternalClientError,  # a connection broken by the server going away
)


async def _init_connection(connection: asyncpg.Connection) -> None:
    await connection.set_type_codec(
        "jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog", format="text"
    )


async def create_pool(url: str, *, min_size: int, max_size: int, timeout: float) -> Pool:
    """An asyncpg pool with JSONB decoded to Python objects.

    Raises BackendUnavailable when the server does not answer, StartupError when the database
    does not exist.
    """
    try:
        pool: Pool = await asyncpg.create_pool(
            url,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            init=_init_connection,
            command_timeout=30,
        )
    except POSTGRES_DOWN as exc:
        raise BackendUnavailable("postgres", type(exc).__name__) from exc
    except asyncpg.InvalidCatalogNameError as exc:
        raise StartupError(f"PostgreSQL database does not exist: {exc}") from exc
    return pool


@asynccontextmanager
async def connection(
    pool: Pool, *, timeout: float | None = None
) -> AsyncIterator[asyncpg.Connection]:
    """One pooled connection (the wiring's schema check); a server away is BackendUnavailable."""
    try:
        async with pool.acquire(timeout=timeout) as held:
            yield held
    except POSTGRES_DOWN as exc:
        raise BackendUnavailable("postgres", type(exc).__name__) from exc
