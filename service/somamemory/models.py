"""The memory record as it travels between the service and its stores."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

MemoryType = Literal["episodic", "semantic"]
MEMORY_TYPES: tuple[MemoryType, ...] = ("episodic", "semantic")
# How fresh a search's view of the vector store must be: every write acknowledged before it
# (strong), this replica's own writes (session), at most a few seconds behind (bounded), or
# whatever the store has (eventually). See the README, "Consistency of search".
Consistency = Literal["strong", "session", "bounded", "eventually"]
EmbedderKind = Literal["onnx", "sentence-transformers", "openai", "hash"]


@dataclass(frozen=True)
class EmbedderInfo:
    """What an embedder is, as ``/health`` reports it and a vector collection records it: which
    kind, which model, how many dims."""

    kind: EmbedderKind
    model: str | None  # None for the hash embedder, which has no model
    dim: int


# Integers beyond this lose exactness as doubles: they are stored, but never filtered on.
MAX_EXACT_INT = 2**53
MAX_VERSION = 2**63 - 1  # versions are PostgreSQL bigints


@dataclass(frozen=True, slots=True)
class NewMemory:
    """What a caller asks to store (the coordinate already normalised)."""

    namespace: str
    coord: str
    memory_type: MemoryType
    payload: dict[str, Any]
    importance: float
    vector: list[float] | None = None  # the client's own embedding, kept canonically
    expires_at: datetime | None = None  # None: never expires (README, "Expiry and decay")
    ttl_seconds: int | None = None  # with refresh_on_read: a read moves expires_at to now + this
    refresh_on_read: bool = False


@dataclass(frozen=True, slots=True)
class Memory:
    """A stored memory, one version of it."""

    namespace: str
    coord: str
    memory_type: MemoryType
    payload: dict[str, Any]
    importance: float
    version: int
    created_at: datetime
    updated_at: datetime
    vector: list[float] | None = None  # the client's own embedding; not part of the JSON
    expires_at: datetime | None = None  # None: never expires
    ttl_seconds: int | None = None  # kept for refresh_on_read (in the JSON only then)
    refresh_on_read: bool = False
    accessed_at: datetime | None = None  # last read recorded in the store; not part of the JSON

    def to_json(self) -> str:
        """Serialise for a cache and for ``GET /memories/{coord}`` (the same shape)."""
        data = {  # no asdict(): it deep-copies the payload
            "namespace": self.namespace,
            "coord": self.coord,
            "memory_type": self.memory_type,
            "payload": self.payload,
            "importance": self.importance,
            "version": self.version,
            "created_at": timestamp(self.created_at),
            "updated_at": timestamp(self.updated_at),
            "expires_at": timestamp(self.expires_at) if self.expires_at is not None else None,
        }
        if self.refresh_on_read:
            data["refresh_on_read"] = True
            data["ttl_seconds"] = self.ttl_seconds
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> Memory:
        """Inverse of :meth:`to_json`."""
        data = json.loads(text)
        data["created_at"] = datetime.fromisoformat(data["created_at"])
        data["updated_at"] = datetime.fromisoformat(data["updated_at"])
        if data.get("expires_at") is not None:
            data["expires_at"] = datetime.fromisoformat(data["expires_at"])
        return cls(**data)

    def expired(self, now: datetime) -> bool:
        """Whether it has expired at ``now`` (an expired memory is never answered)."""
        return self.expires_at is not None and self.expires_at <= now


@dataclass(frozen=True, slots=True)
class TypeCounts:
    """Live memories of one namespace, by type."""

    episodic: int = 0
    semantic: int = 0

    @property
    def total(self) -> int:
        return self.episodic + self.semantic


@dataclass(frozen=True, slots=True)
class DeletionReceipt:
    """Where a delete removed a memory from: each store says ``done``, or why not yet.

    ``canonical`` is ``done`` (or ``absent``: nothing was there); ``cache`` is ``done``, ``none``
    (no cache) or ``unreachable`` (its entry expires within the cache TTL); ``vector`` is ``done``
    or ``pending`` (the reconciler removes it; ``GET /memories/{coord}/deletion`` tells when).
    """

    coord: str
    deleted: bool
    canonical: str
    cache: str
    vector: str


@dataclass(frozen=True, slots=True)
class DeletionStatus:
    """Whether each store is clear of a memory now."""

    coord: str
    canonical: bool
    cache: bool
    vector: bool

    @property
    def clear(self) -> bool:
        return self.canonical and self.cache and self.vector


@dataclass(frozen=True, slots=True)
class NamespacePolicy:
    """A namespace's own default TTLs (by memory type) and cap; what it leaves out (a type
    missing, ``max_memories`` None) falls back to the service's settings (``policies.py``)."""

    namespace: str
    default_ttl_seconds: dict[MemoryType, int]
    max_memories: int | None = None
    updated_at: datetime | None = None


POLICY_FIELDS = ("episodic_ttl_seconds", "semantic_ttl_seconds", "max_memories")


def timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with a ``Z``: the one time format of every answer (pydantic's too)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def canonical_json(payload: dict[str, Any]) -> str:
    """Stable JSON text of a payload: sorted keys, no spaces (size checks, hashing, embedding)."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
