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
        self, namespace: str, coords: Sequence[str], *, now: datetime | None = None
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

    async def delete(self, namespace: str, coord: str) -> bool:
        async with self._lock:
            return self._versions.pop((namespace, coord), None) is not None

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
    """

    name = "in-process"

    def __init__(
        self, ttl_seconds: float, max_entries: int = 100_000, max_bytes: int = 64 * 1_048_576
    ) -> None:
        self._ttl = ttl_seconds
        self._max = max_entries
        self._max_bytes = max_bytes
        self._bytes = 0
        # a value is bytes (a memory's JSON) or a lease (str) a reader holds on the empty entry
        self._entries: OrderedDict[tuple[str, str], tuple[float, bytes | str]] = OrderedDict()

    async def get(self, namespace: str, coord: str) -> CacheLookup:
        key = (namespace, coord)
        entry = self._entries.get(key)
        now = time.monotonic()
        if entry is not None and entry[0] < now:
            self._drop(key)
            entry = None
        if entry is None:
            lease = secrets.token_hex(8)
            self._store(key, now + LEASE_SECONDS, lease)
            return CacheLookup(None, lease)
        value = entry[1]
        if isinstance(value, str):
            return CacheLookup(None)  # another reader is filling it
        self._entries.move_to_end(key)
        return CacheLookup(value)

    async def fill(self, memory: Memory, lease: str) -> None:
        key = (memory.namespace, memory.coord)
        entry = self._entries.get(key)
        if entry is not None and entry[1] == lease:
            self._set(memory)

    async def set_many(self, memories: Sequence[Memory]) -> None:
        for memory in memories:
            self._set(memory)

    def _set(self, memory: Memory) -> None:
        raw = memory.to_json().encode()
        key = (memory.namespace, memory.coord)
        if len(raw) > self._max_bytes:
            self._drop(key)  # too big to keep: reads go to the store
            return
        self._store(key, time.monotonic() + self._ttl, raw)

    def _store(self, key: tuple[str, str], expires: float, value: bytes | str) -> None:
        self._drop(key)
        self._entries[key] = (expires, value)
        self._bytes += len(value)
        now = time.monotonic()
        while self._entries:
            oldest_key, (oldest_expiry, _) = next(iter(self._entries.items()))
            full = len(self._entries) > self._max or self._bytes > self._max_bytes
            if not full and oldest_expiry >= now:
                break
            self._drop(oldest_key)

    def _drop(self, key: tuple[str, str]) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= len(entry[1])

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
