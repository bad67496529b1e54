"""The vector outbox: which memories' vectors are still to write (or remove).

PostgreSQL enqueues in the same statement as the write it follows (see ``postgres.py``), so a
crash between the commit and the vector write loses nothing: the reconciler finds the entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import asyncpg

PendingVector = tuple[str, str, int]  # namespace, coord, version (0 = remove the vector)

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
# next flush): the reconciler leaves them to their writer.
_DUE = """
SELECT namespace, coord, version FROM pending_vectors
WHERE enqueued_at < now() - make_interval(secs => $2) OR attempts > 0
ORDER BY enqueued_at LIMIT $1
"""

_FAILED = """
UPDATE pending_vectors p SET attempts = p.attempts + 1, last_error = $4
FROM unnest($1::text[], $2::text[], $3::bigint[]) AS d(namespace, coord, version)
WHERE p.namespace = d.namespace AND p.coord = d.coord AND p.version = d.version
"""


class Outbox(Protocol):
    """Vectors owed to the vector store."""

    async def done(self, items: Sequence[PendingVector]) -> None:
        """These vectors were written as of these versions."""
        ...

    async def failed(self, items: Sequence[PendingVector], error: str) -> None: ...

    async def due(self, limit: int, grace_seconds: float = 0.0) -> list[PendingVector]:
        """The oldest entries first, skipping ones younger than ``grace_seconds``."""
        ...

    async def backlog(self) -> int: ...


def _columns(items: Sequence[PendingVector]) -> tuple[list[str], list[str], list[int]]:
    return [i[0] for i in items], [i[1] for i in items], [i[2] for i in items]


class PostgresOutbox:
    """The ``pending_vectors`` table."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def done(self, items: Sequence[PendingVector]) -> None:
        if not items:
            return
        columns = _columns(items)
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute(_CLEAR, *columns)
            await connection.execute(_REQUEUE_STALE, *columns)

    async def failed(self, items: Sequence[PendingVector], error: str) -> None:
        if items:
            await self._pool.execute(_FAILED, *_columns(items), error[:1000])

    async def due(self, limit: int, grace_seconds: float = 0.0) -> list[PendingVector]:
        rows = await self._pool.fetch(_DUE, limit, grace_seconds)
        return [(row["namespace"], row["coord"], row["version"]) for row in rows]

    async def backlog(self) -> int:
        count: int = await self._pool.fetchval("SELECT count(*) FROM pending_vectors")
        return count


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
