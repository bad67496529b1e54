"""Expiry and decay in PostgreSQL: the sweeper's batches, TTL refreshes, batched access times
and the eviction order of a namespace over its cap (README, "Expiry and decay")."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import asyncpg

from ..models import MemoryType
from .postgres_pool import Pool

# One batch of the sweeper: the oldest expired rows not locked by anyone else (SKIP LOCKED, so
# replicas sweeping at once take different rows and none waits), deleted with their history,
# their vectors queued for removal in the outbox (version 0), all in one statement. A row
# whose expiry a concurrent write moved is re-checked under its lock and left alone.
_SWEEP = """
WITH due AS (
    SELECT namespace, coord FROM memories
    WHERE expires_at IS NOT NULL AND expires_at <= $1
    ORDER BY expires_at LIMIT $2
    FOR UPDATE SKIP LOCKED
), gone AS (
    DELETE FROM memories AS m USING due
    WHERE m.namespace = due.namespace AND m.coord = due.coord
    RETURNING m.namespace, m.coord
), history AS (
    DELETE FROM memory_versions AS v USING gone
    WHERE v.namespace = gone.namespace AND v.coord = gone.coord
), pending AS (
    INSERT INTO pending_vectors (namespace, coord, version)
    SELECT namespace, coord, 0 FROM gone
    ON CONFLICT (namespace, coord) DO UPDATE SET
        version = 0, attempts = 0, last_error = NULL, retry_at = NULL, enqueued_at = now()
)
SELECT namespace, coord FROM gone
"""

# refresh_on_read: a live memory that asked for it expires ttl_seconds after this read
_REFRESH = """
UPDATE memories SET expires_at = $3 + ttl_seconds * interval '1 second'
WHERE namespace = $1 AND coord = $2 AND refresh_on_read AND ttl_seconds IS NOT NULL
  AND expires_at > $3
RETURNING expires_at
"""

# last reads, many at once; a later time never goes back (replicas flush in any order)
_TOUCH = """
UPDATE memories AS m SET accessed_at = GREATEST(m.accessed_at, a.at)
FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS a(namespace, coord, at)
WHERE m.namespace = a.namespace AND m.coord = a.coord
"""

_LIVE_COUNT = """
SELECT count(*) FROM memories
WHERE namespace = $1 AND (expires_at IS NULL OR expires_at > $2)
"""

# effective importance (decay.py, in SQL): max(floor, importance * 0.5 ** (age / half-life)),
# age from the last read or write; the exponent is capped so float8 cannot underflow
_LOWEST = """
SELECT coord FROM memories
WHERE namespace = $1 AND (expires_at IS NULL OR expires_at > $2)
ORDER BY GREATEST($3, importance * power(0.5, LEAST(1000, GREATEST(0,
    extract(epoch FROM ($2 - GREATEST(updated_at, COALESCE(accessed_at, updated_at))))
    / CASE memory_type WHEN 'semantic' THEN $5::float8 ELSE $4::float8 END)))),
    GREATEST(updated_at, COALESCE(accessed_at, updated_at)), coord
LIMIT $6
"""


async def sweep_batch(pool: Pool, now: datetime, limit: int) -> list[tuple[str, str]]:
    """Delete at most ``limit`` memories expired at ``now``; return their (namespace, coord)."""
    rows = await pool.fetch(_SWEEP, now, limit)
    return [(row["namespace"], row["coord"]) for row in rows]


async def refresh(
    connection: asyncpg.Connection, namespace: str, coord: str, now: datetime
) -> datetime | None:
    """Move a refresh_on_read memory's expiry to ``now`` + its TTL; the new expiry, or None."""
    moved: datetime | None = await connection.fetchval(_REFRESH, namespace, coord, now)
    return moved


async def touch(pool: Pool, reads: Sequence[tuple[str, str, datetime]]) -> None:
    """Record last reads ``(namespace, coord, at)`` in one statement."""
    if reads:
        await pool.execute(
            _TOUCH, [r[0] for r in reads], [r[1] for r in reads], [r[2] for r in reads]
        )


async def least_important(
    connection: asyncpg.Connection,
    namespace: str,
    now: datetime,
    *,
    cap: int,
    floor: float,
    half_lives: Mapping[MemoryType, float],
) -> list[str]:
    """The live memories of ``namespace`` beyond ``cap``, lowest effective importance first
    (ties: least recently read or written first, then by coordinate)."""
    count: int = await connection.fetchval(_LIVE_COUNT, namespace, now)
    if count <= cap:
        return []
    rows = await connection.fetch(
        _LOWEST,
        namespace,
        now,
        floor,
        half_lives["episodic"],
        half_lives["semantic"],
        count - cap,
    )
    return [row["coord"] for row in rows]
