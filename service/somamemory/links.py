"""The memory graph's records and bounds: links, neighbours, paths."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

# Where a walk may go from a memory: along its links (out), against them (in), or both.
Direction = Literal["out", "in", "both"]
DIRECTIONS: tuple[Direction, ...] = ("out", "in", "both")

DEFAULT_LINK_TYPE = "related"  # as the seed's system
LINK_TYPE = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")
MAX_LINK_METADATA_BYTES = 16_384

MAX_K_HOP = 4
MAX_NEIGHBORS = 1000
MAX_PATH_LENGTH = 10
# A path search gives up (saying so) after visiting this many memories without reaching its end.
PATH_VISIT_BUDGET = 20_000


@dataclass(frozen=True, slots=True)
class Link:
    """A typed, directed link between two memories of one namespace."""

    namespace: str
    from_coord: str
    to_coord: str
    link_type: str
    strength: float
    metadata: dict[str, Any]
    created_at: datetime
    created: bool  # False: an existing link of that type was updated


@dataclass(frozen=True, slots=True)
class Neighbor:
    """A memory ``hops`` links away, reached from ``via`` over a link of ``link_type``."""

    coord: str
    hops: int
    via: str
    link_type: str
    strength: float
    metadata: dict[str, Any]


@dataclass(frozen=True, slots=True)
class PathFound:
    """A shortest path (memories from start to end; empty: none), and how far the search went.

    ``exhausted``: no path was found within the visit budget, so a longer search might find one.
    """

    path: list[str]
    link_types: list[str]
    visited: int
    exhausted: bool

    @property
    def found(self) -> bool:
        return bool(self.path)


@dataclass(frozen=True, slots=True)
class Expansion:
    """A memory a search reached over one link from one of its hits."""

    coord: str
    via: str
    link_type: str
    strength: float
