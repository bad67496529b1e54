"""The narrow interfaces every backend implements."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from ..filters import SearchFilter
from ..models import Consistency, Memory, NewMemory, TypeCounts
from ..principals import TokenRecord


class KeyValueStore(Protocol):
    """Where memories and their versions live (PostgreSQL; Redis or in-process when degraded)."""

    name: str
    # when a call last got its answer (time.monotonic(); 0: unknown): readiness needs no ping
    # while requests are being answered, so a busy replica does not report itself unready
    answered_at: float

    async def put(self, memory: NewMemory) -> Memory:
        """Upsert: insert version 1 or bump the version, keeping every earlier version."""
        ...

    async def put_many(self, memories: Sequence[NewMemory]) -> list[Memory]:
        """Upsert many at once, in order (a coord given twice gets two versions)."""
        ...

    async def get(self, namespace: str, coord: str) -> Memory | None: ...

    async def get_many(self, namespace: str, coords: Sequence[str]) -> dict[str, Memory]:
        """The live memories among ``coords``, by coord (missing ones left out)."""
        ...

    async def versions(
        self, namespace: str, coord: str, *, after: int = 0, limit: int | None = None
    ) -> list[Memory]:
        """Stored versions newer than ``after``, oldest first, at most ``limit`` of them; empty
        when the memory does not exist."""
        ...

    async def delete(self, namespace: str, coord: str) -> bool:
        """Remove the memory and its versions; False when there was nothing to remove."""
        ...

    async def counts(self, namespace: str) -> TypeCounts: ...

    async def ping(self) -> None:
        """Raise when the store cannot answer."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class CacheLookup:
    """What a cache read found: the memory's JSON on a hit; on a miss, maybe a fill lease.

    The lease is the right to fill the entry with what the reader then reads canonically. Any
    write, delete or invalidation of the entry in between voids it, on every replica, so a value
    read before a delete (or before a newer write) can never be put back into the cache.
    """

    value: bytes | None
    lease: str | None = None


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One write made while PostgreSQL was away, recorded to be replayed into it in order."""

    id: str
    op: str  # "put" | "delete"
    memory: NewMemory  # for a delete only namespace and coord matter
    told: int | None = None  # a put: the version its client was told (older journals: None)


class Cache(Protocol):
    """A read-through cache of live memories (as their JSON) with a TTL."""

    name: str

    async def get(self, namespace: str, coord: str) -> CacheLookup:
        """The memory's JSON (``Memory.to_json``) on a hit; on a miss, a lease if none is out."""
        ...

    async def fill(self, memory: Memory, lease: str) -> None:
        """Store a value read canonically, only if ``lease`` still holds (nothing changed since)."""
        ...

    async def set_many(self, memories: Sequence[Memory]) -> None:
        """Store values just committed to the canonical store (in one round trip)."""
        ...

    async def invalidate(self, namespace: str, coord: str) -> None: ...

    async def invalidate_many(self, keys: Sequence[tuple[str, str]]) -> None:
        """Drop many entries (namespace, coord) at once."""
        ...

    async def close(self) -> None: ...


class Locks(Protocol):
    """Mutual exclusion per key, across replicas where the backend allows it."""

    name: str

    def hold(self, key: str) -> AbstractAsyncContextManager[None]: ...

    def hold_many(self, keys: Sequence[str]) -> AbstractAsyncContextManager[None]:
        """Hold every key at once (all or none at each attempt, so holders never deadlock)."""
        ...


class RateLimiter(Protocol):
    """Counts requests per key over a window."""

    name: str

    async def hit(self, key: str) -> float | None:
        """Count one request: None if within the limit, else seconds until the window ends."""
        ...


class TokenStore(Protocol):
    """Minted API tokens, by the digest of their secret (the secret itself is never stored)."""

    async def create(self, record: TokenRecord, digest: bytes) -> None: ...

    async def find(self, digest: bytes) -> TokenRecord | None:
        """The token with this digest, revoked or expired ones included."""
        ...

    async def list(self) -> list[TokenRecord]:
        """Every token not revoked, oldest first."""
        ...

    async def revoke(self, token_id: str) -> TokenRecord | None:
        """Mark a token revoked; the record, or None if there is no such live token."""
        ...


class VectorStore(Protocol):
    """One vector per live memory, searchable by similarity."""

    name: str
    answered_at: float  # as KeyValueStore's

    async def upsert(self, items: Sequence[tuple[Memory, Sequence[float]]]) -> None: ...

    async def delete(self, namespace: str, coords: Sequence[str]) -> None: ...

    async def search(
        self,
        vector: Sequence[float],
        *,
        top_k: int,
        where: SearchFilter,
        consistency: Consistency | None = None,
    ) -> list[tuple[str, float]]:
        """(coord, cosine similarity) of the nearest memories ``where`` admits, best first.

        ``consistency`` None: the store's configured level.

        The store compiles the filter into its own query language; all of it runs inside the
        store, so ``top_k`` matches come back whenever that many exist.
        """
        ...

    async def get_vector(self, namespace: str, coord: str) -> list[float] | None: ...

    async def count(self, namespace: str) -> int: ...

    async def ping(self) -> None: ...

    @property
    def durable_writes(self) -> bool:
        """Whether an acknowledged write survives a crash without :meth:`flush`."""
        ...

    @property
    def dirty(self) -> bool:
        """Whether writes since the last flush await one."""
        ...

    async def flush(self) -> None: ...

    async def close(self) -> None: ...
