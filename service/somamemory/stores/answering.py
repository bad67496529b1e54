"""When a backend last answered: evidence for readiness that needs no ping of a busy backend."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from ..errors import BackendUnavailable

P = ParamSpec("P")
R = TypeVar("R")


class Answering(Protocol):
    """A backend store that records when a call last got its answer (``time.monotonic()``)."""

    answered_at: float  # 0: unknown, or its last call found it unavailable


S = TypeVar("S", bound=Answering)


def observed(
    method: Callable[Concatenate[S, P], Coroutine[Any, Any, R]],
) -> Callable[Concatenate[S, P], Coroutine[Any, Any, R]]:
    """Decorate a store method: an answer stamps ``answered_at``; unavailability clears it."""

    @functools.wraps(method)
    async def call(store: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            result = await method(store, *args, **kwargs)
        except BackendUnavailable:
            store.answered_at = 0.0
            raise
        store.answered_at = time.monotonic()
        return result

    return call
