"""The memory graph in PostgreSQL: links in ``memory_links``, walks as recursive queries.

Both walks are breadth-first searches run inside PostgreSQL, one level per step of a recursive
query: a step reads only the links of the previous level's memories (through an index, either
direction), skips the memories already visited (each step carries the visited set), and the
walk stops at its depth bound. The neighbourhood walk also stops once it has ``limit`` memories
(nearer ones come first, so deeper levels could not make the answer), and the path walk once it
reaches its target or has visited ``visit_budget`` memories. No walk ever reads the whole graph.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from ..links import Direction, Link, Neighbor, PathFound
from .postgres_pool import DEFAULT_TIMEOUT, Pool, bounded
from .postgres_row_security import Confinement
from .postgres_rows import link_from_row

_MISSING = """
SELECT c FROM unnest($2::text[]) AS c
WHERE NOT EXISTS (SELECT 1 FROM memories m WHERE m.namespace = $1 AND m.coord = c)
"""

# The foreign keys to both ends refuse a link to a memory that is not (or no longer) there.
_LINK = """
INSERT INTO memory_links AS l (namespace, from_coord, to_coord, link_type, strength, metadata)
VALUES ($1, $2, $3, $4, $5, $6::jsonb)
ON CONFLICT (namespace, from_coord, to_coord, link_type) DO UPDATE SET
    strength = EXCLUDED.strength, metadata = EXCLUDED.metadata
RETURNING namespace, from_coord, to_coord, link_type, strength, metadata, created_at,
          (xmax = 0) AS created
"""

_UNLINK = """
WITH gone AS (
    DELETE FROM memory_links
    WHERE namespace = $1 AND from_coord = $2 AND to_coord = $3
      AND ($4::text IS NULL OR link_type = $4)
    RETURNING 1
)
SELECT count(*) FROM gone
"""

# The links leaving ``w.coords`` (the walk's current level) in the walk's direction, as
# (next, prev, link_type, strength, metadata). ``$3``: link type or NULL; ``$4``: direction.
_STEP = """
SELECT l.to_coord AS next, l.from_coord AS prev, l.link_type, l.strength, l.metadata
FROM memory_links l
WHERE $4::text <> 'in' AND l.namespace = $1 AND l.from_coord = ANY(w.coords)
  AND ($3::text IS NULL OR l.link_type = $3)
UNION ALL
SELECT l.from_coord, l.to_coord, l.link_type, l.strength, l.metadata
FROM memory_links l
WHERE $4::text <> 'out' AND l.namespace = $1 AND l.to_coord = ANY(w.coords)
  AND ($3::text IS NULL OR l.link_type = $3)
"""

# The strongest link into each memory not visited yet (ties: by coordinates, then type).
_NEW = f"""
SELECT * FROM (
    SELECT DISTINCT ON (e.next) e.*
    FROM ({_STEP}) AS e
    ORDER BY e.next, e.strength DESC, e.prev, e.link_type
) AS best
WHERE NOT EXISTS (SELECT 1 FROM unnest(w.visited) AS v(coord) WHERE v.coord = best.next)
"""

# $1 namespace, $2 start, $3 link type, $4 direction, $5 k_hop, $6 limit.
# A level keeps at most the places left (strongest first), so visited never exceeds limit + 1.
_NEIGHBORS = f"""
WITH RECURSIVE walk (hops, coords, prevs, kinds, strengths, metas, visited) AS (
    SELECT 0, ARRAY[$2::text], ARRAY[NULL::text], ARRAY[NULL::text], ARRAY[NULL::float8],
           ARRAY[NULL::jsonb], ARRAY[$2::text]
  UNION ALL
    SELECT w.hops + 1, step.coords, step.prevs, step.kinds, step.strengths, step.metas,
           w.visited || step.coords
    FROM walk AS w
    CROSS JOIN LATERAL (
        SELECT array_agg(kept.next ORDER BY kept.strength DESC, kept.next) AS coords,
               array_agg(kept.prev ORDER BY kept.strength DESC, kept.next) AS prevs,
               array_agg(kept.link_type ORDER BY kept.strength DESC, kept.next) AS kinds,
               array_agg(kept.strength ORDER BY kept.strength DESC, kept.next) AS strengths,
               array_agg(kept.metadata ORDER BY kept.strength DESC, kept.next) AS metas
        FROM (
            SELECT * FROM ({_NEW}) AS fresh
            ORDER BY fresh.strength DESC, fresh.next
            LIMIT $6::int + 1 - cardinality(w.visited)
        ) AS kept
    ) AS step
    WHERE w.hops < $5::int AND cardinality(w.visited) <= $6::int AND step.coords IS NOT NULL
)
SELECT u.coord, w.hops, u.via, u.link_type, u.strength, u.metadata
FROM walk AS w,
     unnest(w.coords, w.prevs, w.kinds, w.strengths, w.metas)
         AS u(coord, via, link_type, strength, metadata)
WHERE w.hops > 0
ORDER BY w.hops, u.strength DESC, u.coord
"""

# $1 namespace, $2 from, $3 link type, $4 direction, $5 max_length, $6 to, $7 visit budget.
# The walk stops at the level that reaches ``$6``; ``back`` then follows the predecessors from
# there to the start, one level down per step.
_PATH = f"""
WITH RECURSIVE walk (hops, coords, prevs, kinds, visited) AS (
    SELECT 0, ARRAY[$2::text], ARRAY[NULL::text], ARRAY[NULL::text], ARRAY[$2::text]
  UNION ALL
    SELECT w.hops + 1, step.coords, step.prevs, step.kinds, w.visited || step.coords
    FROM walk AS w
    CROSS JOIN LATERAL (
        SELECT array_agg(fresh.next) AS coords, array_agg(fresh.prev) AS prevs,
               array_agg(fresh.link_type) AS kinds
        FROM ({_NEW}) AS fresh
    ) AS step
    WHERE w.hops < $5::int AND NOT ($6::text = ANY(w.coords))
      AND cardinality(w.visited) <= $7::int AND step.coords IS NOT NULL
), back (hops, coord, kind, prev) AS (
    SELECT w.hops, $6::text, w.kinds[p], w.prevs[p]
    FROM walk AS w, array_position(w.coords, $6::text) AS p
    WHERE p IS NOT NULL
  UNION ALL
    SELECT w.hops, b.prev, w.kinds[p], w.prevs[p]
    FROM back AS b
    JOIN walk AS w ON w.hops = b.hops - 1,
    array_position(w.coords, b.prev) AS p
)
SELECT (SELECT array_agg(coord ORDER BY hops) FROM back) AS path,
       (SELECT array_agg(kind ORDER BY hops) FROM back WHERE hops > 0) AS kinds,
       (SELECT max(cardinality(visited)) FROM walk) AS visited,
       (SELECT max(hops) FROM walk) AS depth
"""

# One hop from many memories at once (search expansion): the strongest link into each memory
# reached, from the best-ranked source; $2 sources in rank order.
_EXPAND = """
SELECT DISTINCT ON (l.to_coord) l.to_coord, l.from_coord, l.link_type, l.strength
FROM unnest($2::text[]) WITH ORDINALITY AS s(coord, rank)
JOIN memory_links l ON l.namespace = $1 AND l.from_coord = s.coord
WHERE ($3::text IS NULL OR l.link_type = $3) AND NOT (l.to_coord = ANY($2::text[]))
ORDER BY l.to_coord, s.rank, l.strength DESC, l.link_type
"""


class PostgresGraph:
    """Links between memories, and walks over them, in the canonical PostgreSQL.

    Every call answers within ``timeout`` seconds (``BackendUnavailable`` otherwise), confined
    to its namespace with ``row_security`` (``postgres_row_security.py``).
    """

    name = "postgres"
    answered_at = 0.0  # see Budgeted

    def __init__(
        self, pool: Pool, *, timeout: float = DEFAULT_TIMEOUT, row_security: bool = False
    ) -> None:
        self._tenant = Confinement(pool, enabled=row_security).connection
        self.timeout = timeout

    @bounded
    async def missing(self, namespace: str, coords: Sequence[str]) -> list[str]:
        """Those of ``coords`` with no live memory in ``namespace``."""
        async with self._tenant(namespace) as connection:
            rows = await connection.fetch(_MISSING, namespace, list(coords))
        return [row["c"] for row in rows]

    @bounded
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
        try:
            async with self._tenant(namespace) as connection:
                row = await connection.fetchrow(
                    _LINK, namespace, from_coord, to_coord, link_type, strength, metadata
                )
        except asyncpg.ForeignKeyViolationError:
            return None
        return link_from_row(row, Link, created=row["created"])

    @bounded
    async def unlink(
        self, namespace: str, from_coord: str, to_coord: str, link_type: str | None
    ) -> int:
        """Remove the link of that type (every type: None); how many were removed."""
        async with self._tenant(namespace) as connection:
            removed: int = await connection.fetchval(
                _UNLINK, namespace, from_coord, to_coord, link_type
            )
        return removed

    @bounded
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
        """The nearest ``limit`` memories within ``k_hop`` links, nearest first."""
        async with self._tenant(namespace) as connection:
            rows = await connection.fetch(
                _NEIGHBORS, namespace, coord, link_type, direction, k_hop, limit
            )
        return [
            Neighbor(
                coord=row["coord"],
                hops=row["hops"],
                via=row["via"],
                link_type=row["link_type"],
                strength=row["strength"],
                metadata=row["metadata"],
            )
            for row in rows
        ]

    @bounded
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
        """A shortest path by links, or why there is none."""
        async with self._tenant(namespace) as connection:
            row = await connection.fetchrow(
                _PATH,
                namespace,
                from_coord,
                link_type,
                direction,
                max_length,
                to_coord,
                visit_budget,
            )
        path = list(row["path"] or [])
        visited = int(row["visited"] or 0)
        return PathFound(
            path=path,
            link_types=list(row["kinds"] or []),
            visited=visited,
            exhausted=not path and visited > visit_budget,
        )

    @bounded
    async def expand(
        self, namespace: str, coords: Sequence[str], link_type: str | None
    ) -> list[tuple[str, str, str, float]]:
        """(to, from, link_type, strength): one hop out of ``coords`` (ranked), each memory
        reached once, from the best-ranked memory that links to it; ``coords`` left out."""
        async with self._tenant(namespace) as connection:
            rows = await connection.fetch(_EXPAND, namespace, list(coords), link_type)
        return [
            (row["to_coord"], row["from_coord"], row["link_type"], row["strength"]) for row in rows
        ]
