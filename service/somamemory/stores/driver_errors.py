"""Driver errors -> domain errors, at the store boundary.

Each store module names its driver's errors and decorates its methods with :func:`translated`,
so above ``stores/`` a failure is a ``BackendUnavailable`` (or ``BackendRefused``) whatever the
driver, and no other module needs to import one.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
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
