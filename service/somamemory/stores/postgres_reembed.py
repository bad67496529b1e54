"""What re-embedding reads of PostgreSQL: live counts, the outbox's progress, a few samples."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .outbox import MAX_ATTEMPTS
from .postgres_pool import DEFAULT_TIMEOUT, Pool, bounded
from .postgres_transfer import PostgresTransfer

# Entries a rebuild waits for: enqueued before its mark. Parked ones (MAX_ATTEMPTS failures)
# are counted apart: they wait for their memory's next write, not for the rebuild.
_OWED_BEFORE = """
SELECT count(*) FILTER (WHERE attempts < $2) AS owed,
       count(*) FILTER (WHERE attempts >= $2) AS parked
FROM pending_vectors WHERE enqueued_at <= $1
"""

_OUTBOX_BY_NAMESPACE = "SELECT namespace, count(*) AS n FROM pending_vectors GROUP BY namespace"
_LIVE_BY_NAMESPACE = """
SELECT namespace, count(*) AS n FROM memories
WHERE expires_at IS NULL OR expires_at > now() GROUP BY namespace
"""

# Memories whose vector the embedder made (not a client's): what identifies a legacy collection.
_SAMPLES = """
SELECT namespace, coord, payload FROM memories WHERE vector IS NULL
ORDER BY updated_at DESC LIMIT $1
"""


@dataclass(frozen=True, slots=True)
class Owed:
    """Outbox entries enqueued before a rebuild's mark: still to write, and parked."""

    owed: int
    parked: int


class PostgresReembed:
    """Reads for re-embedding; each call answers within ``timeout`` seconds (enqueueing takes
    as long as it takes: it touches every live memory)."""

    answered_at = 0.0  # see Budgeted

    def __init__(self, pool: Pool, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._pool = pool
        self.timeout = timeout
        self._transfer = PostgresTransfer(pool)

    @bounded
    async def clock(self) -> datetime:
        """PostgreSQL's ``now()``: the outbox's timestamps are its."""
        moment: datetime = await self._pool.fetchval("SELECT now()")
        return moment

    async def enqueue(self, namespace: str | None = None) -> int:
        """Every live memory (of ``namespace``, or all) into the outbox; how many."""
        return await self._transfer.enqueue_all(namespace)

    @bounded
    async def owed_before(self, mark: datetime) -> Owed:
        row = await self._pool.fetchrow(_OWED_BEFORE, mark, MAX_ATTEMPTS)
        assert row is not None
        return Owed(int(row["owed"]), int(row["parked"]))

    @bounded
    async def live_counts(self) -> dict[str, int]:
        """Live memories by namespace: the ones the reconciler keeps a vector of."""
        rows = await self._pool.fetch(_LIVE_BY_NAMESPACE)
        return {row["namespace"]: int(row["n"]) for row in rows}

    @bounded
    async def outbox_counts(self) -> dict[str, int]:
        """Outbox entries by namespace (parked ones too)."""
        rows = await self._pool.fetch(_OUTBOX_BY_NAMESPACE)
        return {row["namespace"]: int(row["n"]) for row in rows}

    @bounded
    async def samples(self, limit: int) -> list[tuple[str, str, dict[str, Any]]]:
        """Up to ``limit`` recent memories the embedder made the vector of: (ns, coord, payload)."""
        rows = await self._pool.fetch(_SAMPLES, limit)
        return [(row["namespace"], row["coord"], row["payload"]) for row in rows]
