"""Redis locks that fall back to other locks while Redis does not answer.

At startup the factory decides; at run time this wrapper keeps writes going when Redis goes away
and uses Redis again as soon as it answers. The fallback is PostgreSQL's advisory locks when
PostgreSQL is there (they exclude across processes and replicas, as Redis does), else in-process
locks (a warning says that mutual exclusion is then per process only).

While Redis answers some processes and not others (as it goes away or comes back), a holder of
its Redis lock and a holder of the fallback's lock of the same key do not exclude each other.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from ..errors import BackendUnavailable, LockTimeout
from .protocols import Locks
from .redis import RedisLocks

log = logging.getLogger(__name__)


class FallbackLocks:
    """``RedisLocks`` first; the fallback locks for as long as Redis cannot be reached."""

    name = "redis"

    def __init__(self, primary: RedisLocks, fallback: Locks) -> None:
        self._primary = primary
        self._fallback = fallback

    def hold(self, key: str) -> AbstractAsyncContextManager[None]:
        return self.hold_many([key])

    @asynccontextmanager
    async def hold_many(self, keys: Sequence[str]) -> AsyncIterator[None]:
        held = self._primary.hold_many(keys)
        try:
            await held.__aenter__()
        except LockTimeout:
            raise  # Redis answers: the keys are busy, and other locks would not exclude
        except BackendUnavailable:
            scope = " (this process only)" if self._fallback.name == "in-process" else ""
            log.warning(
                "Redis does not answer: %s locks for %d key(s)%s",
                self._fallback.name,
                len(keys),
                scope,
            )
            async with self._fallback.hold_many(keys):
                yield
            return
        try:
            yield
        finally:
            try:
                await held.__aexit__(None, None, None)
            except BackendUnavailable:
                log.warning("Redis locks not released; they expire on their own")
