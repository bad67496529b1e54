"""The memory graph as the service offers it: checked input, the namespace's own links, and
the graph store of the moment (PostgreSQL; none in the degraded modes, which answer 503)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .coords import normalize_coord
from .errors import BackendUnavailable, InvalidInput, MemoryNotFound, PayloadTooLarge
from .links import (
    DIRECTIONS,
    LINK_TYPE,
    MAX_K_HOP,
    MAX_LINK_METADATA_BYTES,
    MAX_NEIGHBORS,
    MAX_PATH_LENGTH,
    PATH_VISIT_BUDGET,
    Direction,
    Expansion,
    Link,
    Neighbor,
    PathFound,
)
from .live import LiveStores
from .payloads import validate_payload
from .stores import GraphStore


def check_link_type(link_type: str) -> str:
    """The link type if it is a valid one (400 otherwise)."""
    if not LINK_TYPE.fullmatch(link_type):
        raise InvalidInput("link_type must be 1-64 letters, digits, '_', '.', ':' or '-'")
    return link_type


def _optional_link_type(link_type: str | None) -> str | None:
    return None if link_type is None else check_link_type(link_type)


def _within(name: str, value: int, top: int) -> int:
    if not 1 <= value <= top:
        raise InvalidInput(f"{name} must be between 1 and {top}")
    return value


def _direction(direction: str) -> Direction:
    for known in DIRECTIONS:
        if direction == known:
            return known
    raise InvalidInput("direction must be one of 'out', 'in', 'both'")


def _checked_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """What JSONB takes, within the size limit (400 otherwise)."""
    try:
        validate_payload(metadata, MAX_LINK_METADATA_BYTES)
    except PayloadTooLarge as exc:
        raise InvalidInput(
            f"link metadata is over {MAX_LINK_METADATA_BYTES} bytes of JSON"
        ) from exc
    except InvalidInput as exc:
        raise InvalidInput(f"link metadata: {str(exc).removeprefix('payload ')}") from exc
    return metadata


class MemoryGraph:
    """Link, unlink and walk the memories of one namespace at a time."""

    def __init__(self, live: LiveStores) -> None:
        self.live = live

    @property
    def available(self) -> bool:
        """Whether the graph can be used now (PostgreSQL is the canonical store)."""
        return self.live.graph is not None

    def _store(self) -> GraphStore:
        graph = self.live.graph
        if graph is None:
            raise BackendUnavailable(
                "postgres",
                f"the memory graph lives in PostgreSQL, which this service is without now "
                f"(mode {self.live.mode}); links answer again once PostgreSQL does",
            )
        return graph

    async def _require(self, graph: GraphStore, namespace: str, coords: Sequence[str]) -> None:
        missing = await graph.missing(namespace, coords)
        if missing:
            raise MemoryNotFound(f"no memory at coordinate {missing[0]} in namespace {namespace!r}")

    async def link(
        self,
        namespace: str,
        from_coord: str,
        to_coord: str,
        link_type: str,
        *,
        strength: float = 1.0,
        metadata: dict[str, Any] | None = None,
    ) -> Link:
        """Link two memories of ``namespace`` (an upsert per type); 404 if either is missing."""
        start, end = normalize_coord(from_coord), normalize_coord(to_coord)
        check_link_type(link_type)
        if not math.isfinite(strength):
            raise InvalidInput("strength must be a finite number")
        data = _checked_metadata(metadata or {})
        graph = self._store()
        linked = await graph.link(namespace, start, end, link_type, strength, data)
        if linked is None:  # a memory is missing (perhaps deleted just now): say which
            await self._require(graph, namespace, [start, end])
            raise MemoryNotFound(f"no memory at {start} or {end} in namespace {namespace!r}")
        return linked

    async def unlink(
        self, namespace: str, from_coord: str, to_coord: str, link_type: str | None = None
    ) -> tuple[str, str, int]:
        """Remove the link of that type (every type: None); (from, to, how many removed)."""
        start, end = normalize_coord(from_coord), normalize_coord(to_coord)
        kind = _optional_link_type(link_type)
        removed = await self._store().unlink(namespace, start, end, kind)
        return start, end, removed

    async def neighbors(
        self,
        namespace: str,
        coord: str,
        *,
        k_hop: int = 1,
        limit: int = 10,
        link_type: str | None = None,
        direction: str = "out",
    ) -> tuple[str, list[Neighbor]]:
        """The nearest ``limit`` memories within ``k_hop`` links of ``coord``, nearest first
        (then strongest link); 404 if ``coord`` is not a memory of ``namespace``."""
        start = normalize_coord(coord)
        _within("k_hop", k_hop, MAX_K_HOP)
        _within("limit", limit, MAX_NEIGHBORS)
        kind, way = _optional_link_type(link_type), _direction(direction)
        graph = self._store()
        await self._require(graph, namespace, [start])
        found = await graph.neighbors(
            namespace, start, k_hop=k_hop, limit=limit, link_type=kind, direction=way
        )
        return start, found

    async def path(
        self,
        namespace: str,
        from_coord: str,
        to_coord: str,
        *,
        max_length: int = MAX_PATH_LENGTH,
        link_type: str | None = None,
        direction: str = "out",
    ) -> tuple[str, str, PathFound]:
        """A shortest path (by links) from one memory to another; 404 if either is missing."""
        start, end = normalize_coord(from_coord), normalize_coord(to_coord)
        _within("max_length", max_length, MAX_PATH_LENGTH)
        kind, way = _optional_link_type(link_type), _direction(direction)
        graph = self._store()
        await self._require(graph, namespace, [start, end])
        found = await graph.path(
            namespace,
            start,
            end,
            max_length=max_length,
            link_type=kind,
            direction=way,
            visit_budget=PATH_VISIT_BUDGET,
        )
        return start, end, found

    async def expand(
        self, namespace: str, ranked: Sequence[str], link_type: str | None, limit: int
    ) -> list[Expansion]:
        """At most ``limit`` memories one link out of ``ranked`` (search hits, best first),
        none of them among ``ranked``, each once: reached from its best-ranked hit, then over
        its strongest link."""
        kind = _optional_link_type(link_type)
        graph = self._store()
        if not ranked:
            return []
        found = await graph.expand(namespace, ranked, kind)
        rank = {coord: index for index, coord in enumerate(ranked)}
        found.sort(key=lambda hop: (rank[hop[1]], -hop[3], hop[0]))
        return [Expansion(to, via, kind_, strength) for to, via, kind_, strength in found[:limit]]
