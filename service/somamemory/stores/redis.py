"""Redis (redis-py asyncio): the read cache, the lock service, and the store of Redis-only mode."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime

from ..errors import LockTimeout
from ..models import Memory, NewMemory, TypeCounts
from . import redis_cache_entries as entries
from .driver_errors import unavailable
from .journal import RedisJournal, encode_delete, encode_put
from .protocols import CacheLookup
from .redis_client import REDIS_DOWN, Client

_unavailable = unavailable("redis", REDIS_DOWN)


LEASE_MILLISECONDS = 10_000  # a reader that dies holding a lease blocks fills for this long


class RedisCache:
    """Live memories under ``{prefix}:cache:{namespace}:{coord}``, with a TTL, under leases.

    Every change is one Lua script that compares versions first (``redis_cache_entries``): an
    older value never replaces a newer one, nor a tombstone of a newer one.
    """

    name = "redis"

    def __init__(self, client: Client, *, prefix: str, ttl_seconds: int) -> None:
        self._client = client
        self._prefix = prefix
        self._ttl = ttl_seconds
        self._lookup = client.register_script(entries.LOOKUP)
        self._fill = client.register_script(entries.FILL)
        self._set_many = client.register_script(entries.SET_MANY)
        self._tombstone_many = client.register_script(entries.TOMBSTONE_MANY)

    def _key(self, namespace: str, coord: str) -> str:
        return f"{self._prefix}:cache:{namespace}:{coord}"

    @_unavailable
    async def get(self, namespace: str, coord: str) -> CacheLookup:
        lease = secrets.token_hex(8)
        found = await self._lookup(
            keys=[self._key(namespace, coord)], args=[lease, LEASE_MILLISECONDS]
        )
        if found is None:
            return CacheLookup(None, lease)
        if isinstance(found, int):
            return CacheLookup(None)  # another reader is filling it
        return CacheLookup(found.encode() if isinstance(found, str) else found)

    @_unavailable
    async def fill(self, memory: Memory, lease: str) -> None:
        await self._fill(
            keys=[self._key(memory.namespace, memory.coord)],
            args=[lease, entries.version_field(memory.version), memory.to_json(), self._ttl],
        )

    @_unavailable
    async def peek(self, namespace: str, coord: str) -> Memory | None:
        """The cached memory, if any, without taking a fill lease."""
        raw = await self._client.get(self._key(namespace, coord))
        if raw is None:
            return None
        found = entries.memory_json(raw.encode() if isinstance(raw, str) else raw)
        return None if found is None else Memory.from_json(found)

    @_unavailable
    async def set_many(self, memories: Sequence[Memory]) -> None:
        if not memories:
            return
        args: list[str | int] = [self._ttl]
        for memory in memories:
            args += [entries.version_field(memory.version), memory.to_json()]
        keys = [self._key(memory.namespace, memory.coord) for memory in memories]
        await self._set_many(keys=keys, args=args)

    @_unavailable
    async def tombstone_many(self, marks: Sequence[tuple[str, str, int]]) -> None:
        if marks:
            await self._tombstone_many(
                keys=[self._key(ns, coord) for ns, coord, _ in marks],
                args=[self._ttl, *(entries.version_field(version) for _, _, version in marks)],
            )

    @_unavailable
    async def invalidate(self, namespace: str, coord: str) -> None:
        await self._client.delete(self._key(namespace, coord))

    @_unavailable
    async def invalidate_many(self, keys: Sequence[tuple[str, str]]) -> None:
        if keys:
            await self._client.delete(*(self._key(ns, coord) for ns, coord in keys))

    async def close(self) -> None:
        await self._client.aclose()


# All or nothing: set every key to the holder's token only if none is held; release only the
# keys that still carry the token (an expired lock taken over by another holder stays theirs).
_ACQUIRE_ALL = """
for i, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then return 0 end
end
for i, key in ipairs(KEYS) do
  redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
end
return 1
"""
_RELEASE_ALL = """
local released = 0
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('DEL', key)
    released = released + 1
  end
end
return released
"""


class RedisLocks:
    """Redis locks with a timeout, so a crashed holder cannot block a key forever.

    Every key is held the same way (a token under ``{prefix}:lock:{key}``), so a holder of one
    key and a holder of many exclude each other across replicas.
    """

    name = "redis"

    def __init__(self, client: Client, *, prefix: str, timeout: float) -> None:
        self._client = client
        self._prefix = prefix
        self._timeout = timeout
        self._acquire = client.register_script(_ACQUIRE_ALL)
        self._release = client.register_script(_RELEASE_ALL)

    def hold(self, key: str) -> AbstractAsyncContextManager[None]:
        return self.hold_many([key])

    @asynccontextmanager
    async def hold_many(self, keys: Sequence[str]) -> AsyncIterator[None]:
        names = [f"{self._prefix}:lock:{key}" for key in sorted(set(keys))]
        token = secrets.token_hex(16)
        expire_ms = int(self._timeout * 1000)
        deadline = time.monotonic() + self._timeout
        delay = 0.001
        while not await self._try_acquire(names, token, expire_ms):
            if time.monotonic() >= deadline:
                raise LockTimeout("redis", f"{len(names)} lock(s) not acquired in {self._timeout}s")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)
        try:
            yield
        finally:
            await self._release_all(names, token)

    @_unavailable
    async def _try_acquire(self, names: list[str], token: str, expire_ms: int) -> bool:
        return bool(await self._acquire(keys=names, args=[token, expire_ms]))

    @_unavailable
    async def _release_all(self, names: list[str], token: str) -> None:
        await self._release(keys=names, args=[token])


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisStore:
    """Memories in Redis, for Redis-only mode while PostgreSQL is unreachable.

    Each memory is a list of JSON versions; a hash per namespace maps live coords to their type.
    A memory PostgreSQL already held continues from the version the cache knows (its ``base``,
    kept beside the list): the version a client is told is the one replay stores. A memory the
    cache does not know starts from 1, and replay may renumber it after PostgreSQL's versions
    (the order of writes holds; replay logs how many it renumbered).
    """

    name = "redis"
    answered_at = 0.0  # readiness pings Redis-only mode's store

    def __init__(
        self,
        client: Client,
        *,
        prefix: str,
        locks: RedisLocks,
        journal: RedisJournal | None = None,
        cache: RedisCache | None = None,
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._locks = locks
        self._journal = journal
        self._cache = cache

    def _versions_key(self, namespace: str, coord: str) -> str:
        return f"{self._prefix}:store:{namespace}:{coord}"

    def _base_key(self, namespace: str, coord: str) -> str:
        """The version before the list's first: the one PostgreSQL held (0: none known); after
        a delete, the deleted memory's last, so a memory written again continues after it as
        it does in PostgreSQL, which keeps deleted histories (README, "Time travel")."""
        return f"{self._prefix}:store-base:{namespace}:{coord}"

    async def _base(self, namespace: str, coord: str) -> int:
        return int(await self._client.get(self._base_key(namespace, coord)) or 0)

    def _index_key(self, namespace: str) -> str:
        return f"{self._prefix}:index:{namespace}"

    @_unavailable
    async def put(self, memory: NewMemory) -> Memory:
        key = self._versions_key(memory.namespace, memory.coord)
        async with self._locks.hold(f"store:{memory.namespace}:{memory.coord}"):
            first = await self._client.lindex(key, 0)
            count = await self._client.llen(key)
            now = datetime.now(UTC)
            created_at = Memory.from_json(first).created_at if first else now
            known = None
            if not count and self._cache is not None:
                known = await self._cache.peek(memory.namespace, memory.coord)
            if known is not None:
                base, created_at = known.version, known.created_at
            else:
                base = await self._base(memory.namespace, memory.coord)
            stored = Memory(
                namespace=memory.namespace,
                coord=memory.coord,
                memory_type=memory.memory_type,
                payload=memory.payload,
                importance=memory.importance,
                vector=memory.vector,
                version=base + count + 1,
                created_at=created_at,
                updated_at=now,
                expires_at=memory.expires_at,
                ttl_seconds=memory.ttl_seconds,
                refresh_on_read=memory.refresh_on_read,
            )
            async with self._client.pipeline(transaction=True) as pipe:
                if known is not None:
                    pipe.set(self._base_key(memory.namespace, memory.coord), base)
                pipe.rpush(key, stored.to_json())
                kind = memory.memory_type + ("|expiring" if memory.expires_at else "")
                pipe.hset(self._index_key(memory.namespace), memory.coord, kind)
                if self._journal is not None:
                    self._journal.add(pipe, encode_put(memory, stored.version))
                await pipe.execute()
        return stored

    async def put_many(self, memories: Sequence[NewMemory]) -> list[Memory]:
        return [await self.put(memory) for memory in memories]

    # Expired memories are filtered here on read; they stay in Redis (and in the journal, with
    # their expiry) until replay, after which PostgreSQL's sweeper deletes them.

    @_unavailable
    async def get(
        self, namespace: str, coord: str, *, now: datetime | None = None
    ) -> Memory | None:
        raw = await self._client.lindex(self._versions_key(namespace, coord), -1)
        memory = Memory.from_json(raw) if raw is not None else None
        return None if memory is None or memory.expired(now or datetime.now(UTC)) else memory

    @_unavailable
    async def get_many(
        self,
        namespace: str,
        coords: Sequence[str],
        *,
        now: datetime | None = None,
        with_vectors: bool = False,  # they come with every memory here
    ) -> dict[str, Memory]:
        async with self._client.pipeline(transaction=False) as pipe:
            for coord in coords:
                pipe.lindex(self._versions_key(namespace, coord), -1)
            raws = await pipe.execute()
        found = {c: Memory.from_json(raw) for c, raw in zip(coords, raws, strict=True) if raw}
        moment = now or datetime.now(UTC)
        return {c: memory for c, memory in found.items() if not memory.expired(moment)}

    @_unavailable
    async def versions(
        self,
        namespace: str,
        coord: str,
        *,
        after: int = 0,
        limit: int | None = None,
        now: datetime | None = None,
    ) -> list[Memory]:
        if await self.get(namespace, coord, now=now) is None:
            return []
        # the list holds versions base + 1, base + 2 ... in order: version v sits at index
        # v - base - 1 (older versions are in PostgreSQL, out of reach in this mode)
        start = max(after - await self._base(namespace, coord), 0)
        stop = -1 if limit is None else start + limit - 1
        raws = await self._client.lrange(self._versions_key(namespace, coord), start, stop)
        return [Memory.from_json(raw) for raw in raws]

    @_unavailable
    async def delete(self, namespace: str, coord: str) -> int:
        key = self._versions_key(namespace, coord)
        async with self._locks.hold(f"store:{namespace}:{coord}"):
            count = await self._client.llen(key)
            last = await self._base(namespace, coord) + count
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.delete(key)
                if count:  # the next life's versions continue after this one's
                    pipe.set(self._base_key(namespace, coord), last)
                pipe.hdel(self._index_key(namespace), coord)
                if self._journal is not None:
                    self._journal.add(pipe, encode_delete(namespace, coord))
                await pipe.execute()
        return last if count else 0

    @_unavailable
    async def counts(self, namespace: str, *, now: datetime | None = None) -> TypeCounts:
        """Live memories by type. Where some may have expired (the index says which can, by a
        ``|expiring`` suffix) their latest versions are read to leave the expired out."""
        raw = await self._client.hgetall(self._index_key(namespace))
        index = {_text(coord): _text(kind) for coord, kind in raw.items()}
        expiring = [coord for coord, kind in index.items() if kind.endswith("|expiring")]
        live = await self.get_many(namespace, expiring, now=now) if expiring else {}
        types = [
            kind.split("|")[0]
            for coord, kind in index.items()
            if not kind.endswith("|expiring") or coord in live
        ]
        return TypeCounts(
            episodic=sum(t == "episodic" for t in types),
            semantic=sum(t == "semantic" for t in types),
        )

    @_unavailable
    async def ping(self) -> None:
        await self._client.ping()

    async def close(self) -> None:
        return None  # the client is shared with the cache and locks; the factory closes it
