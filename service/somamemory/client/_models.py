"""Typed results of the client: frozen dataclasses built from the server's JSON.

Each ``from_json`` reads the fields it names and ignores the rest, so a newer server that adds
fields keeps working with an older client.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

MemoryType = Literal["episodic", "semantic"]
Coord = str | Sequence[float]
"""A coordinate: ``"1,2,3"`` as the server spells it, or numbers such as ``(1.0, 2.0, 3.0)``."""
Json = dict[str, Any]


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


@dataclass(frozen=True, slots=True)
class StoreResult:
    """The answer to a store: the canonical coordinate and the version now live."""

    coord: str
    memory_type: MemoryType
    ok: bool
    namespace: str
    version: int
    indexed: bool

    @classmethod
    def from_json(cls, data: Json) -> StoreResult:
        return cls(
            coord=data["coord"],
            memory_type=data["memory_type"],
            ok=bool(data["ok"]),
            namespace=data["namespace"],
            version=int(data["version"]),
            indexed=bool(data["indexed"]),
        )


@dataclass(frozen=True, slots=True)
class Memory:
    """One version of a stored memory; ``expires_at`` is None for a memory that never expires."""

    namespace: str
    coord: str
    memory_type: MemoryType
    payload: Json
    importance: float
    version: int
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None = None

    @classmethod
    def from_json(cls, data: Json) -> Memory:
        return cls(
            namespace=data["namespace"],
            coord=data["coord"],
            memory_type=data["memory_type"],
            payload=data["payload"],
            importance=float(data["importance"]),
            version=int(data["version"]),
            created_at=datetime.fromisoformat(data["created_at"]),
            updated_at=datetime.fromisoformat(data["updated_at"]),
            expires_at=_when(data.get("expires_at")),
        )


@dataclass(frozen=True, slots=True)
class VersionsPage:
    """One page of a memory's versions, oldest first; ``next_after`` is None on the last page."""

    coord: str
    versions: list[Memory]
    next_after: int | None

    @classmethod
    def from_json(cls, data: Json) -> VersionsPage:
        return cls(
            coord=data["coord"],
            versions=[Memory.from_json(item) for item in data["versions"]],
            next_after=_optional_int(data.get("next_after")),
        )


@dataclass(frozen=True, slots=True)
class DeleteResult:
    """``deleted`` is False when there was nothing to delete (deleting twice is fine)."""

    coord: str
    deleted: bool

    @classmethod
    def from_json(cls, data: Json) -> DeleteResult:
        return cls(coord=data["coord"], deleted=bool(data["deleted"]))


@dataclass(frozen=True, slots=True)
class BatchItemResult:
    """One item of a batch: ``status`` 200 written, 4xx invalid, 409 not written (atomic)."""

    index: int
    status: int
    coord: str | None = None
    version: int | None = None
    indexed: bool | None = None
    detail: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200

    @classmethod
    def from_json(cls, data: Json) -> BatchItemResult:
        indexed = data.get("indexed")
        return cls(
            index=int(data["index"]),
            status=int(data["status"]),
            coord=data.get("coord"),
            version=_optional_int(data.get("version")),
            indexed=None if indexed is None else bool(indexed),
            detail=data.get("detail"),
        )


@dataclass(frozen=True, slots=True)
class BatchResult:
    """The answer to a batch: how many were written, how many failed, a result per item."""

    written: int
    failed: int
    results: list[BatchItemResult]

    @classmethod
    def from_json(cls, data: Json) -> BatchResult:
        return cls(
            written=int(data["written"]),
            failed=int(data["failed"]),
            results=[BatchItemResult.from_json(item) for item in data["results"]],
        )


@dataclass(frozen=True, slots=True)
class Via:
    """How a search expansion was reached: over a link from one of the hits."""

    coord: str
    link_type: str
    strength: float

    @classmethod
    def from_json(cls, data: Json) -> Via:
        return cls(
            coord=data["coord"], link_type=data["link_type"], strength=float(data["strength"])
        )


@dataclass(frozen=True, slots=True)
class SearchHit:
    """A memory found by a search, best first.

    ``score`` orders the answer (higher is better): the cosine similarity in vector mode, the
    fused score in hybrid mode (README, "Hybrid search"). ``similarity`` is the cosine
    similarity in every mode (None when the memory came from the keyword list alone);
    ``ranks`` its rank in each list (``{"vector": 3, "keyword": 1}``). ``via`` is set on
    expansions only (``expand=``): the hit it is linked from, whose score it carries."""

    coord: str
    payload: Json
    memory_type: MemoryType
    importance: float
    version: int
    score: float
    via: Via | None = None
    similarity: float | None = None
    ranks: dict[str, int | None] | None = None

    @classmethod
    def from_json(cls, data: Json) -> SearchHit:
        via = data.get("via")
        return cls(
            coord=data["coord"],
            payload=data["payload"],
            memory_type=data["memory_type"],
            importance=float(data.get("importance", 0.0)),
            version=int(data.get("version", 0)),
            score=float(data["score"]),
            via=Via.from_json(via) if via is not None else None,
            similarity=float(data["similarity"]) if data.get("similarity") is not None else None,
            ranks=data.get("ranks"),
        )


def search_hits(data: Json) -> list[SearchHit]:
    return [SearchHit.from_json(item) for item in data["memories"]]


@dataclass(frozen=True, slots=True)
class Stats:
    """Counts of the caller's namespace; ``vector_count`` is None when Milvus does not answer."""

    namespace: str
    total_memories: int
    episodic: int
    semantic: int
    vector_count: int | None
    namespaces: dict[str, int]

    @classmethod
    def from_json(cls, data: Json) -> Stats:
        return cls(
            namespace=data.get("namespace", ""),
            total_memories=int(data["total_memories"]),
            episodic=int(data["episodic"]),
            semantic=int(data["semantic"]),
            vector_count=_optional_int(data.get("vector_count")),
            namespaces={str(k): int(v) for k, v in data.get("namespaces", {}).items()},
        )


@dataclass(frozen=True, slots=True)
class BackendHealth:
    ok: bool
    kind: str
    detail: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BackendHealth:
        return cls(ok=bool(data["ok"]), kind=str(data["kind"]), detail=data.get("detail"))


@dataclass(frozen=True, slots=True)
class Health:
    """Each backend's state and the degradation mode in force; ``raw`` keeps the whole answer."""

    kv_store: bool
    vector_store: bool
    graph_store: bool
    mode: str
    degraded: bool
    backends: dict[str, BackendHealth]
    reconcile_backlog: int | None = None
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Json) -> Health:
        return cls(
            kv_store=bool(data["kv_store"]),
            vector_store=bool(data["vector_store"]),
            graph_store=bool(data["graph_store"]),
            mode=str(data.get("mode", "")),
            degraded=bool(data.get("degraded", False)),
            backends={
                name: BackendHealth.from_json(state)
                for name, state in data.get("backends", {}).items()
            },
            reconcile_backlog=_optional_int(data.get("reconcile_backlog")),
            raw=data,
        )


@dataclass(frozen=True, slots=True)
class LinkResult:
    """A link between two memories; ``created`` is False when an existing link of that type
    was updated (None from a server that does not say)."""

    from_coord: str
    to_coord: str
    link_type: str
    ok: bool
    strength: float | None = None
    created: bool | None = None

    @classmethod
    def from_json(cls, data: Json) -> LinkResult:
        strength, created = data.get("strength"), data.get("created")
        return cls(
            from_coord=data["from_coord"],
            to_coord=data["to_coord"],
            link_type=data["link_type"],
            ok=bool(data["ok"]),
            strength=float(strength) if strength is not None else None,
            created=bool(created) if created is not None else None,
        )


@dataclass(frozen=True, slots=True)
class UnlinkResult:
    """A removed link; ``deleted`` is False when there was none; ``link_type`` None: every
    type between the two memories."""

    from_coord: str
    to_coord: str
    link_type: str | None
    deleted: bool
    removed: int | None = None

    @classmethod
    def from_json(cls, data: Json) -> UnlinkResult:
        return cls(
            from_coord=data["from_coord"],
            to_coord=data["to_coord"],
            link_type=data.get("link_type"),
            deleted=bool(data.get("deleted", data.get("ok", False))),
            removed=_optional_int(data.get("removed")),
        )


@dataclass(frozen=True, slots=True)
class Neighbor:
    """A memory ``hops`` links away, reached from ``via`` over a link of ``link_type``."""

    coord: str
    hops: int
    via: str | None
    link_type: str | None
    strength: float | None
    metadata: Json

    @classmethod
    def from_json(cls, data: Json) -> Neighbor:
        strength = data.get("strength")
        return cls(
            coord=data["coord"],
            hops=int(data.get("hops", 1)),
            via=data.get("via"),
            link_type=data.get("link_type"),
            strength=float(strength) if strength is not None else None,
            metadata=dict(data.get("metadata") or {}),
        )


@dataclass(frozen=True, slots=True)
class Neighbors:
    """The memories within k links of ``coord``, nearest first, then strongest link."""

    coord: str
    neighbors: list[Neighbor]

    @classmethod
    def from_json(cls, data: Json) -> Neighbors:
        return cls(
            coord=data["coord"], neighbors=[Neighbor.from_json(n) for n in data["neighbors"]]
        )


@dataclass(frozen=True, slots=True)
class GraphPath:
    """A shortest path between two memories (by links), if ``found``.

    ``path`` runs from ``from_coord`` to ``to_coord``; ``link_types[i]`` is the type of the
    link between ``path[i]`` and ``path[i + 1]``. ``exhausted``: none was found before the
    server's visit budget ran out (a longer one may exist)."""

    from_coord: str
    to_coord: str
    path: list[str]
    link_types: list[str]
    found: bool
    hops: int | None = None
    exhausted: bool = False

    @classmethod
    def from_json(cls, data: Json) -> GraphPath:
        return cls(
            from_coord=data["from_coord"],
            to_coord=data["to_coord"],
            path=[str(step) for step in data["path"]],
            link_types=[str(kind) for kind in data["link_types"]],
            found=bool(data["found"]),
            hops=_optional_int(data.get("hops")),
            exhausted=bool(data.get("exhausted", False)),
        )


def _when(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """An API token as listed: id, role, namespaces (``("*",)`` for all); never its secret."""

    id: str
    role: Literal["read", "write", "admin"]
    namespaces: tuple[str, ...]
    created_at: datetime
    expires_at: datetime | None = None
    description: str | None = None

    @classmethod
    def from_json(cls, data: Json) -> TokenInfo:
        return cls(
            id=data["id"],
            role=data["role"],
            namespaces=tuple(data["namespaces"]),
            created_at=datetime.fromisoformat(data["created_at"]),
            expires_at=_when(data.get("expires_at")),
            description=data.get("description"),
        )


@dataclass(frozen=True, slots=True)
class MintedToken:
    """A new token: ``token`` is its secret, which the server shows this once."""

    info: TokenInfo
    token: str = field(repr=False)

    @classmethod
    def from_json(cls, data: Json) -> MintedToken:
        return cls(info=TokenInfo.from_json(data), token=data["token"])


@dataclass(frozen=True, slots=True)
class PolicyValue:
    """One value of a namespace's effective policy and its source: ``"namespace"`` (its own)
    or ``"settings"`` (the server's; ``value`` None: no default TTL, or no cap)."""

    value: int | None
    source: Literal["namespace", "settings"]

    @classmethod
    def from_json(cls, data: Json) -> PolicyValue:
        return cls(value=data["value"], source=data["source"])


@dataclass(frozen=True, slots=True)
class NamespacePolicy:
    """A namespace's effective policy: default TTL by memory type, and its cap."""

    namespace: str
    default_ttl_seconds: Mapping[str, PolicyValue]
    max_memories: PolicyValue
    updated_at: datetime | None = None  # None: the namespace has no policy of its own

    @classmethod
    def from_json(cls, data: Json) -> NamespacePolicy:
        ttls = data["default_ttl_seconds"]
        return cls(
            namespace=data["namespace"],
            default_ttl_seconds={kind: PolicyValue.from_json(ttls[kind]) for kind in ttls},
            max_memories=PolicyValue.from_json(data["max_memories"]),
            updated_at=_when(data.get("updated_at")),
        )


def token_list(data: Json) -> list[TokenInfo]:
    return [TokenInfo.from_json(item) for item in data["tokens"]]
