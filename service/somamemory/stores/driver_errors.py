"""Driver errors -> domain errors, at the store boundary.

Each store module names its driver's errors and decorates its methods with :func:`translated`,
so above ``stores/`` a failure is a ``BackendUnavailable`` (or ``BackendRefused``) whatever the
driver, and no other module needs to import one. A backend that does not answer at all (a frozen
server) is one too, after a time budget: see :func:`within`.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from ..errors import BackendUnavailable, SomaError

P = ParamSpec("P")
R = TypeVar("R")
Kinds = tuple[type[BaseException], ...]
Method = Callable[P, Coroutine[Any, Any, R]]


def translated(
    kinds: Kinds, translate: Callable[[BaseException], SomaError]
) -> Callable[[Method[P, R]], Method[P, R]]:
    """Decorate a coroutine method: an error of ``kinds`` is raised as ``translate(error)``."""

    def decorate(method: Method[P, R]) -> Method[P, R]:
        @functools.wraps(method)
        async def call(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return await method(*args, **kwargs)
            except kinds as exc:
                raise translate(exc) from exc

        return call

    return decorate


def unavailable(backend: str, kinds: Kinds) -> Callable[[Method[P, R]], Method[P, R]]:
    """Decorate a coroutine method: an error of ``kinds`` means ``backend`` is unavailable."""
    return translated(kinds, lambda exc: BackendUnavailable(backend, type(exc).__name__))


# Calls given up on, still finishing their cancellation; kept so they are not garbage-collected.
_abandoned: set[asyncio.Future[Any]] = set()


def _forget(call: asyncio.Future[Any]) -> None:
    _abandoned.discard(call)
    if not call.cancelled():
        call.exception()  # retrieved: its failure was reported to the caller already


def _abandon(call: asyncio.Future[Any]) -> None:
    call.cancel()  # nothing to cancel when it is done already
    _abandoned.add(call)
    call.add_done_callback(_forget)


async def within(work: Awaitable[R], seconds: float, backend: str, name: str) -> R:
    """``work``'s result, or ``BackendUnavailable`` once ``name`` has not answered in ``seconds``.

    The caller never waits for the driver's cleanup, which may itself wait on a server that does
    not answer (asyncpg cancels a query through a new connection, then waits for the old one):
    the work is cancelled and left to finish in the background. ``asyncio.wait_for`` would
    await that cancellation, and so hang as long as the server does.
    """
    call = asyncio.ensure_future(work)
    try:
        done, _ = await asyncio.wait([call], timeout=seconds)
    except BaseException:  # the caller itself was cancelled: so is its work
        _abandon(call)
        raise
    if not done:
        _abandon(call)
        raise BackendUnavailable(backend, f"{name} did not answer within {seconds:g} s")
    return call.result()
