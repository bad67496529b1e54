"""The PostgreSQL pool the store, the outbox and the journal replay share: how it is opened,
which of its errors mean PostgreSQL is away, and the time budget every call answers within."""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, Concatenate, ParamSpec, Protocol, TypeAlias, TypeVar

import asyncpg

from ..errors import BackendUnavailable, StartupError
from .answering import Answering, observed
from .driver_errors import Kinds, within

Pool: TypeAlias = asyncpg.Pool
P = ParamSpec("P")
R = TypeVar("R")
DEFAULT_TIMEOUT = 5.0  # seconds a call may take (SOMA_POSTGRES_TIMEOUT_SECONDS)

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


class Budgeted(Answering, Protocol):
    """A PostgreSQL store whose every call answers within ``timeout`` seconds (and records
    when it last did, see ``answering.py``)."""

    @property
    def timeout(self) -> float: ...


S = TypeVar("S", bound=Budgeted)


async def answered(work: Awaitable[R], seconds: float) -> R:
    """``work``'s result within ``seconds``; PostgreSQL away or silent is BackendUnavailable.

    A frozen server (processes stopped) accepts connections and never answers: without a budget
    a request would wait for the driver's own timeouts, which then wait on the same server.
    """
    try:
        return await within(work, seconds, "postgres", "PostgreSQL")
    except TimeoutError as exc:  # the driver's own (connect) timeout came first
        raise BackendUnavailable("postgres", "PostgreSQL did not answer in time") from exc
    except POSTGRES_DOWN as exc:
        raise BackendUnavailable("postgres", type(exc).__name__) from exc


def bounded(
    method: Callable[Concatenate[S, P], Coroutine[Any, Any, R]],
) -> Callable[Concatenate[S, P], Coroutine[Any, Any, R]]:
    """Decorate a store method: it answers within its store's ``timeout`` (see ``answered``)."""

    async def within_budget(store: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return await answered(method(store, *args, **kwargs), store.timeout)

    return functools.wraps(method)(observed(within_budget))


async def _init_connection(connection: asyncpg.Connection) -> None:
    await connection.set_type_codec(
        "jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog", format="text"
    )


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Nothing to reset: the pool's users leave no session state behind (asyncpg still rolls
    back a transaction left open before this is called)."""


async def create_pool(
    url: str, *, min_size: int, max_size: int, timeout: float, resets_sessions: bool = True
) -> Pool:
    """An asyncpg pool with JSONB decoded to Python objects.

    ``resets_sessions=False`` is for a pool whose users set no session setting, listen to no
    channel, keep no cursor and take no session lock: a released connection is then only
    rolled back if a transaction was left open, without asyncpg's reset query (a round trip per
    release: 6% of the event loop's time under sustained writes).

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
            reset=None if resets_sessions else _keep_session,
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
