"""Redis locks that fall back to in-process ones while Redis does not answer.

Redis unreachable -> in-process cache and locks. At startup the factory
decides; at run time this wrapper keeps writes going when Redis goes away (a warning says that
mutual exclusion is then per process only) and uses Redis again as soon as it answers.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from ..errors import BackendUnavailable, LockTimeout
from .inprocess import InProcessLocks
from .redis import RedisLocks

log = logging.getLogger(__name__)


class FallbackLocks:
    """``RedisLocks`` first; ``InProcessLocks`` for as long as Redis cannot be reached."""

    name = "redis"

    def __init__(self, primary: RedisLocks, fallback: InProcessLocks) -> None:
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
            log.warning(
                "Redis does not answer: in-process locks for %d key(s) (this replica only)",
                len(keys),
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
