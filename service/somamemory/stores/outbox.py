"""The vector outbox: which memories' vectors are still to write (or remove).

PostgreSQL enqueues in the same statement as the write it follows (see ``postgres.py``), so a
crash between the commit and the vector write loses nothing: the reconciler finds the entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from .postgres_pool import DEFAULT_TIMEOUT, Pool, bounded

PendingVector = tuple[str, str, int]  # namespace, coord, version (0 = remove the vector)
MAX_ATTEMPTS = 8  # then an entry is parked, and shown in /health, until its memory changes


@dataclass(frozen=True, slots=True)
class ParkedVectors:
    """Entries the reconciler gave up on, and a few of them with their last error."""

    count: int
    examples: list[dict[str, object]]


_CLEAR = """
DELETE FROM pending_vectors p
USING unnest($1::text[], $2::text[], $3::bigint[]) AS d(namespace, coord, version)
WHERE p.namespace = d.namespace AND p.coord = d.coord AND p.version = d.version
"""

# A vector written for version v while the memory moved on (another replica, the reconciler)
# may be stale: enqueue the memory's current state again.
_REQUEUE_STALE = """
INSERT INTO pending_vectors (namespace, coord, version)
SELECT d.namespace, d.coord, coalesce(m.version, 0)
FROM unnest($1::text[], $2::text[], $3::bigint[]) AS d(namespace, coord, version)
LEFT JOIN memories m ON m.namespace = d.namespace AND m.coord = d.coord
WHERE coalesce(m.version, 0) <> d.version
ON CONFLICT (namespace, coord) DO UPDATE SET version = EXCLUDED.version
"""

# Entries younger than the grace period belong to writes still in flight (or waiting for the
# next flush): the reconciler leaves them to their writer. A failed entry waits for its own
# retry time; one that failed $3 times is parked until its memory is written again.
_DUE = """
SELECT namespace, coord, version FROM pending_vectors
WHERE attempts < $3
  AND CASE WHEN attempts = 0 THEN enqueued_at < now() - make_interval(secs => $2)
           ELSE retry_at <= now() END
ORDER BY coalesce(retry_at, enqueued_at) LIMIT $1
"""

# Exponential backoff per entry: 2, 4, 8 ... seconds, at most five minutes.
_FAILED = """
UPDATE pending_vectors p SET attempts = p.attempts + 1, last_error = $4,
    retry_at = now() + make_interval(secs => least(300, 2 ^ (p.attempts + 1)))
FROM unnest($1::text[], $2::text[], $3::bigint[]) AS d(namespace, coord, version)
WHERE p.namespace = d.namespace AND p.coord = d.coord AND p.version = d.version
"""

_PARKED = """
SELECT namespace, coord, version, attempts, last_error FROM pending_vectors
WHERE attempts >= $1 ORDER BY retry_at DESC LIMIT $2
"""


class Outbox(Protocol):
    """Vectors owed to the vector store."""

    async def done(self, items: Sequence[PendingVector]) -> None:
        """These vectors were written as of these versions."""
        ...

    async def failed(self, items: Sequence[PendingVector], error: str) -> None: ...

    async def due(self, limit: int, grace_seconds: float = 0.0) -> list[PendingVector]:
        """The oldest entries first, skipping ones younger than ``grace_seconds``, ones waiting
        for their retry time, and parked ones."""
        ...

    async def backlog(self) -> int: ...

    async def parked(self, examples: int = 5) -> ParkedVectors:
        """How many entries are parked, with a few of them."""
        ...


def _columns(items: Sequence[PendingVector]) -> tuple[list[str], list[str], list[int]]:
    return [i[0] for i in items], [i[1] for i in items], [i[2] for i in items]


def _last_per_memory(items: Sequence[PendingVector]) -> list[PendingVector]:
    """One entry per memory, the last written: it is the state the vector store now holds."""
    return list({(ns, coord): (ns, coord, version) for ns, coord, version in items}.values())


class PostgresOutbox:
    """The ``pending_vectors`` table; every call answers within ``timeout`` seconds."""

    answered_at = 0.0  # see Budgeted

    def __init__(self, pool: Pool, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._pool = pool
        self.timeout = timeout

    @bounded
    async def done(self, items: Sequence[PendingVector]) -> None:
        if not items:
            return
        columns = _columns(_last_per_memory(items))
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute(_CLEAR, *columns)
            await connection.execute(_REQUEUE_STALE, *columns)

    @bounded
    async def failed(self, items: Sequence[PendingVector], error: str) -> None:
        if items:
            await self._pool.execute(_FAILED, *_columns(items), error[:1000])

    @bounded
    async def due(self, limit: int, grace_seconds: float = 0.0) -> list[PendingVector]:
        rows = await self._pool.fetch(_DUE, limit, grace_seconds, MAX_ATTEMPTS)
        return [(row["namespace"], row["coord"], row["version"]) for row in rows]

    @bounded
    async def backlog(self) -> int:
        count: int = await self._pool.fetchval("SELECT count(*) FROM pending_vectors")
        return count

    @bounded
    async def parked(self, examples: int = 5) -> ParkedVectors:
        count: int = await self._pool.fetchval(
            "SELECT count(*) FROM pending_vectors WHERE attempts >= $1", MAX_ATTEMPTS
        )
        rows = await self._pool.fetch(_PARKED, MAX_ATTEMPTS, examples) if count else []
        return ParkedVectors(count, [dict(row) for row in rows])


class NoOutbox:
    """Redis-only and in-process modes keep no outbox: a failed vector write is only logged."""

    async def done(self, items: Sequence[PendingVector]) -> None:
        return None

    async def failed(self, items: Sequence[PendingVector], error: str) -> None:
        return None

    async def due(self, limit: int, grace_seconds: float = 0.0) -> list[PendingVector]:
        return []

    async def backlog(self) -> int:
        return 0

    async def parked(self, examples: int = 5) -> ParkedVectors:
        return ParkedVectors(0, [])
