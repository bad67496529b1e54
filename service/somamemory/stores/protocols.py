"""The narrow interfaces every backend implements."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ..filters import SearchFilter
from ..links import Direction, Link, Neighbor, PathFound
from ..models import Consistency, Memory, MemoryType, NamespacePolicy, NewMemory, TypeCounts
from ..principals import TokenRecord

if TYPE_CHECKING:
    from .postgres_keyword import KeywordHit


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

    # ``now``: the service's clock; a memory expired at ``now`` is not answered (None: the
    # store's own clock)
    async def get(
        self, namespace: str, coord: str, *, now: datetime | None = None
    ) -> Memory | None: ...

    async def get_many(
        self,
        namespace: str,
        coords: Sequence[str],
        *,
        now: datetime | None = None,
        with_vectors: bool = False,
    ) -> dict[str, Memory]:
        """The live memories among ``coords``, by coord (missing ones left out). Their client
        vectors come with ``with_vectors``; without it a store may leave them out."""
        ...

    async def versions(
        self,
        namespace: str,
        coord: str,
        *,
        after: int = 0,
        limit: int | None = None,
        now: datetime | None = None,
    ) -> list[Memory]:
        """Stored versions newer than ``after``, oldest first, at most ``limit`` of them; empty
        when the memory does not exist or has expired."""
        ...

    async def delete(self, namespace: str, coord: str) -> int:
        """Remove the memory and its versions: the version removed, 0 when there was none."""
        ...

    async def counts(self, namespace: str, *, now: datetime | None = None) -> TypeCounts: ...

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
        """Store a value read canonically, only if ``lease`` still holds (nothing changed since)
        or the entry holds an older version (value or tombstone)."""
        ...

    async def set_many(self, memories: Sequence[Memory]) -> None:
        """Store values just committed to the canonical store (in one round trip); each only
        over no entry or an entry of an older version, so an older value never lands last."""
        ...

    async def tombstone_many(self, marks: Sequence[tuple[str, str, int]]) -> None:
        """Drop entries (namespace, coord, version), leaving tombstones: no value at or below
        the version (nor the one dropped) lands afterwards, until the TTL."""
        ...

    async def invalidate(self, namespace: str, coord: str) -> None:
        """Drop an entry with no tombstone (versions may start over, as after a replay)."""
        ...

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


class PolicyStore(Protocol):
    """Namespaces' own policies (``models.POLICY_FIELDS``): default TTLs and a cap."""

    async def get(self, namespace: str) -> NamespacePolicy | None:
        """The namespace's policy, or None if it has none."""
        ...

    async def update(self, namespace: str, changes: Mapping[str, int | None]) -> NamespacePolicy:
        """Set the fields named in ``changes`` (None clears one), keep the others; the result."""
        ...

    async def delete(self, namespace: str) -> bool:
        """Clear the namespace's policy; whether it had one."""
        ...


class GraphStore(Protocol):
    """Links between memories of one namespace, and bounded walks over them."""

    name: str

    async def missing(self, namespace: str, coords: Sequence[str]) -> list[str]:
        """Those of ``coords`` with no live memory in ``namespace``."""
        ...

    async def link(
        self,
        namespace: str,
        from_coord: str,
        to_coord: str,
        link_type: str,
        strength: float,
        metadata: dict[str, Any],
    ) -> Link | None:
        """Create or update a link; None when either memory is not there."""
        ...

    async def unlink(
        self, namespace: str, from_coord: str, to_coord: str, link_type: str | None
    ) -> int:
        """Remove the link of that type (every type: None); how many were removed."""
        ...

    async def neighbors(
        self,
        namespace: str,
        coord: str,
        *,
        k_hop: int,
        limit: int,
        link_type: str | None,
        direction: Direction,
    ) -> list[Neighbor]:
        """The nearest ``limit`` memories within ``k_hop`` links (breadth first)."""
        ...

    async def path(
        self,
        namespace: str,
        from_coord: str,
        to_coord: str,
        *,
        max_length: int,
        link_type: str | None,
        direction: Direction,
        visit_budget: int,
    ) -> PathFound:
        """A shortest path by links, visiting at most about ``visit_budget`` memories."""
        ...

    async def expand(
        self, namespace: str, coords: Sequence[str], link_type: str | None
    ) -> list[tuple[str, str, str, float]]:
        """(to, from, link_type, strength) one link out of ``coords`` (best-ranked first)."""
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


@runtime_checkable
class KeywordSearch(Protocol):
    """A canonical store that also finds memories by the words of their payload (PostgreSQL)."""

    async def keyword_search(
        self, text: str, *, where: SearchFilter, limit: int
    ) -> list[KeywordHit]:
        """Memories ``where`` admits containing terms of ``text``, best first, at most ``limit``."""
        ...


@runtime_checkable
class Expiring(Protocol):
    """A canonical store that sweeps expired memories and refreshes TTLs (PostgreSQL,
    in-process; Redis-only mode filters expired memories on read and leaves the rest to
    PostgreSQL's sweeper after replay)."""

    async def sweep_expired(self, now: datetime, limit: int) -> list[tuple[str, str]]:
        """Delete at most ``limit`` memories expired at ``now``; their (namespace, coord)."""
        ...

    async def refresh_expiry(self, namespace: str, coord: str, now: datetime) -> datetime | None:
        """Move a refresh_on_read memory's expiry to ``now`` + its TTL; the new one, or None."""
        ...


@runtime_checkable
class Decaying(Protocol):
    """A canonical store that records reads and orders memories by effective importance."""

    async def touch(self, reads: Sequence[tuple[str, str, datetime]]) -> None:
        """Record last reads ``(namespace, coord, at)``."""
        ...

    async def least_important(
        self,
        namespace: str,
        now: datetime,
        *,
        cap: int,
        floor: float,
        half_lives: Mapping[MemoryType, float],
    ) -> list[str]:
        """The live memories beyond ``cap``, lowest effective importance first."""
        ...


@runtime_checkable
class History(Protocol):
    """A canonical store that keeps deleted memories' versions for time travel (PostgreSQL)."""

    async def as_of(self, namespace: str, coord: str, moment: datetime) -> Memory | None:
        """The version current at ``moment`` (future: now); None before the memory existed or
        once it had been deleted (or had expired) by then."""
        ...

    async def deletions(
        self, namespace: str, coord: str, *, after: int = 0, limit: int | None = None
    ) -> dict[int, datetime]:
        """When a delete ended a version, by version (earlier lives of a memory written again)."""
        ...

    async def purge_deleted(self, cutoff: datetime, limit: int) -> tuple[int, int]:
        """Remove up to ``limit`` histories deleted before ``cutoff``: (deletions, versions)."""
        ...
