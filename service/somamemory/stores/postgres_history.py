"""Time travel on PostgreSQL: the version current at a moment, and the purge of deleted histories.

A delete keeps the memory's rows in ``memory_versions`` and stamps ``deleted_at`` on the version
it ended (``postgres.py``); a memory written again at that coordinate continues the numbering, so
a version number never names two contents. The version current at a moment is the newest one
written by then, unless a delete stamped on it came by then too.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

from ..models import Memory
from .postgres_rows import memory_from_row

# A moment in the future is now (PostgreSQL's clock, the one that stamped the versions). With
# the live row's expiry: a memory that had expired by then was gone too (``live_expires_at``, so
# the version answered carries no expiry of its own).
_AS_OF = """
WITH asked AS (SELECT least($3::timestamptz, now()) AS moment)
SELECT v.namespace, v.coord, v.memory_type, v.payload, v.importance, v.version, v.created_at,
       v.updated_at, v.deleted_at, m.expires_at AS live_expires_at, asked.moment
FROM asked, memory_versions v
LEFT JOIN memories m ON m.namespace = v.namespace AND m.coord = v.coord
WHERE v.namespace = $1 AND v.coord = $2 AND v.updated_at <= asked.moment
ORDER BY v.version DESC LIMIT 1
"""

_DELETIONS = """
SELECT version, deleted_at FROM memory_versions
WHERE namespace = $1 AND coord = $2 AND deleted_at IS NOT NULL AND version > $3
ORDER BY version LIMIT $4
"""

# The oldest deletions before the cutoff, each with the versions it ended and every earlier one
# (an earlier life ended earlier still). SKIP LOCKED: replicas purging at once take different
# deletions, and a pass takes at most $2 of them.
_PURGE = """
WITH doomed AS (
    SELECT namespace, coord, version FROM memory_versions
    WHERE deleted_at IS NOT NULL AND deleted_at < $1
    ORDER BY deleted_at LIMIT $2
    FOR UPDATE SKIP LOCKED
), gone AS (
    DELETE FROM memory_versions v USING doomed d
    WHERE v.namespace = d.namespace AND v.coord = d.coord AND v.version <= d.version
    RETURNING 1
)
SELECT (SELECT count(*) FROM doomed) AS deletions, (SELECT count(*) FROM gone) AS versions
"""


async def as_of(
    connection: asyncpg.Connection, namespace: str, coord: str, moment: datetime
) -> Memory | None:
    """The version current at ``moment``; None before the memory existed or after its delete."""
    row = await connection.fetchrow(_AS_OF, namespace, coord, moment)
    if row is None:
        return None
    ended = row["deleted_at"] if row["deleted_at"] is not None else row["live_expires_at"]
    if ended is not None and ended <= row["moment"]:
        return None
    return memory_from_row(row)


async def deletions(
    connection: asyncpg.Connection, namespace: str, coord: str, *, after: int, limit: int | None
) -> dict[int, datetime]:
    """When a delete ended a version, by version (of those after ``after``)."""
    rows = await connection.fetch(_DELETIONS, namespace, coord, after, limit)
    return {row["version"]: row["deleted_at"] for row in rows}


async def purge(pool: asyncpg.Pool, cutoff: datetime, limit: int) -> tuple[int, int]:
    """Remove up to ``limit`` deleted histories whose delete came before ``cutoff``; return
    (deletions purged, version rows removed)."""
    row = await pool.fetchrow(_PURGE, cutoff, limit)
    return int(row["deletions"]), int(row["versions"])
