"""A shared cache whose failed updates are owed, not forgotten.

When Redis stops answering, a write cannot refresh or drop its cache entry. If Redis comes back
with its data (an append-only file, a network blip), the entry cached before would be served
again until its TTL, hiding the writes made meanwhile. So every key whose update failed is kept
here, and the cache is not read (nor filled) until those keys are dropped; past ``max_owed`` keys
the list is forgotten and the cache is not trusted for one TTL instead, by which time every
entry from before has expired. The keys a replica owes are dropped at its next cache call once
Redis answers; other replicas may read such an entry until then.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from ..errors import BackendUnavailable
from ..models import Memory
from .protocols import Cache, CacheLookup


class RepairingCache:
    """Wraps a networked cache; see the module docstring."""

    def __init__(self, inner: Cache, *, ttl_seconds: float, max_owed: int = 100_000) -> None:
        self._inner = inner
        self._ttl = ttl_seconds
        self._max_owed = max_owed
        self._owed: set[tuple[str, str]] = set()
        self._untrusted_until = 0.0
        self.name = inner.name

    @property
    def owed(self) -> int:
        """Keys whose update failed and that are not dropped yet."""
        return len(self._owed)

    def _owe(self, keys: Sequence[tuple[str, str]]) -> None:
        self._owed.update(keys)
        if len(self._owed) > self._max_owed:
            self._owed.clear()
            self._untrusted_until = time.monotonic() + self._ttl

    async def _settled(self) -> bool:
        """Drop the owed keys; True when the cache can be read again."""
        if self._owed:
            owed = list(self._owed)
            try:
                await self._inner.invalidate_many(owed)
            except BackendUnavailable:
                return False
            self._owed.difference_update(owed)
        return time.monotonic() >= self._untrusted_until

    async def get(self, namespace: str, coord: str) -> CacheLookup:
        if not await self._settled():
            return CacheLookup(None)  # no lease either: nothing fills an untrusted cache
        return await self._inner.get(namespace, coord)

    async def fill(self, memory: Memory, lease: str) -> None:
        if await self._settled():
            await self._inner.fill(memory, lease)

    async def set_many(self, memories: Sequence[Memory]) -> None:
        try:
            await self._inner.set_many(memories)
        except BackendUnavailable:
            self._owe([(memory.namespace, memory.coord) for memory in memories])
            raise

    async def tombstone_many(self, marks: Sequence[tuple[str, str, int]]) -> None:
        try:
            await self._inner.tombstone_many(marks)
        except BackendUnavailable:
            self._owe([(namespace, coord) for namespace, coord, _ in marks])
            raise

    async def invalidate(self, namespace: str, coord: str) -> None:
        try:
            await self._inner.invalidate(namespace, coord)
        except BackendUnavailable:
            self._owe([(namespace, coord)])
            raise

    async def invalidate_many(self, keys: Sequence[tuple[str, str]]) -> None:
        try:
            await self._inner.invalidate_many(keys)
        except BackendUnavailable:
            self._owe(keys)
            raise

    async def close(self) -> None:
        await self._inner.close()
