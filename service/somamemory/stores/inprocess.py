"""In-process stand-ins: a store, a cache and locks for when Redis (or everything) is absent.

They keep the same contracts as their networked peers but live and die with the process, and
locks only exclude within it: the factory logs a warning whenever one is chosen.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from weakref import WeakValueDictionary

from ..models import Memory, NewMemory, TypeCounts
from ..principals import TokenRecord
from .protocols import CacheLookup

LEASE_SECONDS = 10.0  # a reader that dies holding a lease blocks fills for this long

# a cache entry: (expiry, version, held); held is a memory's JSON (bytes), a lease a reader holds
# on the empty entry (str; the version is its floor), or None for a tombstone
_Entry = tuple[float, int, bytes | str | None]


class InProcessStore:
    """Memories in a dict: the last resort when neither PostgreSQL nor Redis answers."""

    name = "in-process"
    answered_at = math.inf  # always answers

    def __init__(self) -> None:
        self._versions: dict[tuple[str, str], list[Memory]] = {}
        self._lock = asyncio.Lock()

    async def put(self, memory: NewMemory) -> Memory:
        async with self._lock:
            key = (memory.namespace, memory.coord)
            history = self._versions.setdefault(key, [])
            now = datetime.now(UTC)
            stored = Memory(
                namespace=memory.namespace,
                coord=memory.coord,
                memory_type=memory.memory_type,
                payload=memory.payload,
                importance=memory.importance,
                vector=memory.vector,
                version=len(history) + 1,
                created_at=history[0].created_at if history else now,
                updated_at=now,
                expires_at=memory.expires_at,
                ttl_seconds=memory.ttl_seconds,
                refresh_on_read=memory.refresh_on_read,
            )
            history.append(stored)
            return stored

    async def put_many(self, memories: Sequence[NewMemory]) -> list[Memory]:
        return [await self.put(memory) for memory in memories]

    def _live(self, key: tuple[str, str], now: datetime | None) -> Memory | None:
        history = self._versions.get(key)
        if not history or history[-1].expired(now or datetime.now(UTC)):
            return None
        return history[-1]

    async def get(
        self, namespace: str, coord: str, *, now: datetime | None = None
    ) -> Memory | None:
        return self._live((namespace, coord), now)

    async def get_many(
        self,
        namespace: str,
        coords: Sequence[str],
        *,
        now: datetime | None = None,
        with_vectors: bool = False,  # they come with every memory here
    ) -> dict[str, Memory]:
        found = {coord: self._live((namespace, coord), now) for coord in coords}
        return {coord: memory for coord, memory in found.items() if memory is not None}

    async def versions(
        self,
        namespace: str,
        coord: str,
        *,
        after: int = 0,
        limit: int | None = None,
        now: datetime | None = None,
    ) -> list[Memory]:
        if self._live((namespace, coord), now) is None:
            return []
        newer = [m for m in self._versions.get((namespace, coord), []) if m.version > after]
        return newer if limit is None else newer[:limit]

    async def sweep_expired(self, now: datetime, limit: int) -> list[tuple[str, str]]:
        """Drop at most ``limit`` memories expired at ``now`` (their vectors: the caller's)."""
        async with self._lock:
            due = [key for key, h in self._versions.items() if h and h[-1].expired(now)][:limit]
            for key in due:
                del self._versions[key]
            return due

    async def refresh_expiry(self, namespace: str, coord: str, now: datetime) -> datetime | None:
        async with self._lock:
            memory = self._live((namespace, coord), now)
            if memory is None or not memory.refresh_on_read or memory.ttl_seconds is None:
                return None
            moved = now + timedelta(seconds=memory.ttl_seconds)
            self._versions[(namespace, coord)][-1] = dataclasses.replace(memory, expires_at=moved)
            return moved

    async def delete(self, namespace: str, coord: str) -> int:
        async with self._lock:
            history = self._versions.pop((namespace, coord), None)
            return history[-1].version if history else 0

    async def counts(self, namespace: str, *, now: datetime | None = None) -> TypeCounts:
        moment = now or datetime.now(UTC)
        live = [
            h[-1]
            for (ns, _), h in self._versions.items()
            if ns == namespace and h and not h[-1].expired(moment)
        ]
        return TypeCounts(
            episodic=sum(m.memory_type == "episodic" for m in live),
            semantic=sum(m.memory_type == "semantic" for m in live),
        )

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None


class InProcessCache:
    """A bounded LRU with a TTL, in place of Redis, filled under leases as the Redis cache is.

    Bounded twice: by entries and by bytes of cached JSON. Expired entries are dropped when read
    and, oldest first, whenever something is stored, so they never pile up unread.

    Every entry keeps a version, and changes follow the Redis cache's rules
    (``redis_cache_entries``): an older value never replaces a newer one, nor a tombstone of a
    newer one. No method awaits anything, so each runs whole on the event loop: the same
    all-at-once a lock (or Redis's Lua) gives.
    """

    name = "in-process"

    def __init__(
        self, ttl_seconds: float, max_entries: int = 100_000, max_bytes: int = 64 * 1_048_576
    ) -> None:
        self._ttl = ttl_seconds
        self._max = max_entries
        self._max_bytes = max_bytes
        self._bytes = 0
        self._entries: OrderedDict[tuple[str, str], _Entry] = OrderedDict()

    async def get(self, namespace: str, coord: str) -> CacheLookup:
        key = (namespace, coord)
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is not None and entry[0] >= now and isinstance(entry[2], bytes):
            self._entries.move_to_end(key)  # a hit, checked first
            return CacheLookup(entry[2])
        entry = self._current(key, now)
        if entry is None or entry[2] is None:  # nothing, or a tombstone: its floor stays
            lease = secrets.token_hex(8)
            self._store(key, now + LEASE_SECONDS, entry[1] if entry else 0, lease)
            return CacheLookup(None, lease)
        return CacheLookup(None)  # another reader's lease: it is filling the entry

    def _current(self, key: tuple[str, str], now: float) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is not None and entry[0] < now:
            self._drop(key)
            return None
        return entry

    async def fill(self, memory: Memory, lease: str) -> None:
        entry = self._current((memory.namespace, memory.coord), time.monotonic())
        if entry is None:
            return  # the lease was dropped (an invalidation)
        if isinstance(entry[2], str) and entry[2] != lease:
            return  # another reader's lease
        if entry[1] < memory.version:
            self._set(memory)

    async def set_many(self, memories: Sequence[Memory]) -> None:
        now = time.monotonic()
        for memory in memories:
            entry = self._current((memory.namespace, memory.coord), now)
            if entry is None or entry[1] < memory.version:
                self._set(memory)

    async def tombstone_many(self, marks: Sequence[tuple[str, str, int]]) -> None:
        now = time.monotonic()
        for namespace, coord, version in marks:
            entry = self._current((namespace, coord), now)
            floor = max(version, entry[1]) if entry is not None else version
            self._store((namespace, coord), now + self._ttl, floor, None)

    def _set(self, memory: Memory) -> None:
        raw = memory.to_json().encode()
        key = (memory.namespace, memory.coord)
        expires = time.monotonic() + self._ttl
        if len(raw) > self._max_bytes:  # too big to keep: reads go to the store
            self._store(key, expires, memory.version, None)  # and nothing older lands
            return
        self._store(key, expires, memory.version, raw)

    def _store(
        self, key: tuple[str, str], expires: float, version: int, held: bytes | str | None
    ) -> None:
        self._drop(key)
        self._entries[key] = (expires, version, held)
        self._bytes += len(held) if held is not None else 0
        now = time.monotonic()
        while self._entries:
            oldest_key, (oldest_expiry, _, _) = next(iter(self._entries.items()))
            full = len(self._entries) > self._max or self._bytes > self._max_bytes
            if not full and oldest_expiry >= now:
                break
            self._drop(oldest_key)

    def _drop(self, key: tuple[str, str]) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None and entry[2] is not None:
            self._bytes -= len(entry[2])

    @property
    def size_bytes(self) -> int:
        """Bytes of cached values held now."""
        return self._bytes

    async def invalidate(self, namespace: str, coord: str) -> None:
        self._drop((namespace, coord))

    async def invalidate_many(self, keys: Sequence[tuple[str, str]]) -> None:
        for key in keys:
            self._drop(key)

    async def close(self) -> None:
        self._entries.clear()
        self._bytes = 0


class InProcessLocks:
    """One asyncio lock per key; excludes only within this process."""

    name = "in-process"

    def __init__(self) -> None:
        self._locks: WeakValueDictionary[str, asyncio.Lock] = WeakValueDictionary()

    def _lock(self, key: str) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[key] = lock
        return lock

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        async with self._lock(key):
            yield

    @asynccontextmanager
    async def hold_many(self, keys: Sequence[str]) -> AsyncIterator[None]:
        # one global order of acquisition: two holders of overlapping sets cannot deadlock
        async with contextlib.AsyncExitStack() as stack:
            for key in sorted(set(keys)):
                await stack.enter_async_context(self._lock(key))
            yield


class InProcessTokenStore:
    """Minted tokens in this process, for the in-process mode: they die with it, as memories do."""

    name = "in-process"

    def __init__(self) -> None:
        self._by_digest: dict[bytes, TokenRecord] = {}

    async def create(self, record: TokenRecord, digest: bytes) -> None:
        self._by_digest[digest] = record

    async def find(self, digest: bytes) -> TokenRecord | None:
        return self._by_digest.get(digest)

    async def list(self) -> list[TokenRecord]:
        live = [record for record in self._by_digest.values() if record.revoked_at is None]
        return sorted(live, key=lambda record: (record.created_at, record.id))

    async def revoke(self, token_id: str) -> TokenRecord | None:
        for digest, record in self._by_digest.items():
            if record.id == token_id and record.revoked_at is None:
                revoked = dataclasses.replace(record, revoked_at=datetime.now(UTC))
                self._by_digest[digest] = revoked
                return revoked
        return None
