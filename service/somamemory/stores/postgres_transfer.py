"""PostgreSQL side of export, import and reindex: whole histories in and out, in constant memory.

Export reads ``memory_versions`` through a server-side cursor inside one read-only, repeatable-read
transaction, then the links of the memories it read (``memory_links``) in the same transaction, so
the file is one consistent snapshot however long it takes. Import writes each version with its
original number and timestamps (``ON CONFLICT DO NOTHING``), the live row's expiry and last read
as they were (never recomputed from the importer's clock), and each link with its own creation
time (``ON CONFLICT DO NOTHING``), so running it again, or resuming it after an interruption, adds
nothing. Both enqueue in the vector outbox what the vector store must catch up on.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from ..errors import BackendUnavailable
from ..models import Memory, MemoryType
from .driver_errors import unavailable
from .postgres_analyze import Analyzer
from .postgres_pool import POSTGRES_DOWN, Pool
from .postgres_row_security import confine
from .postgres_rows import link_from_row, memory_from_row

_unavailable = unavailable("postgres", POSTGRES_DOWN)


@dataclass(frozen=True, slots=True)
class VersionRecord:
    """One stored version of a memory, as it moves between instances."""

    version: int
    memory_type: MemoryType
    payload: dict[str, object]
    importance: float
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = None  # a delete ended the memory at this version


@dataclass(slots=True)
class MemoryHistory:
    """A memory with every version, oldest first, and the client's own vector if it gave one.

    The expiry fields and the last read are the live row's, as stored (a history that ends in a
    delete has no live row, so none)."""

    namespace: str
    coord: str
    memory_type: MemoryType
    versions: list[VersionRecord]
    vector: list[float] | None = None
    expires_at: datetime | None = None
    ttl_seconds: int | None = None  # kept for refresh_on_read
    refresh_on_read: bool = False
    accessed_at: datetime | None = None


@dataclass(slots=True)
class LinkRecord:
    """One link of the memory graph, as it moves between instances."""

    namespace: str
    from_coord: str
    to_coord: str
    link_type: str
    strength: float
    metadata: dict[str, Any]
    created_at: datetime


# The live row's vector rides on its version. A deleted memory (history kept for time travel,
# no live row) is exported only when asked ($2), its last version carrying the delete.
_EXPORT = """
SELECT v.namespace, v.coord, v.version, v.memory_type, v.payload, v.importance,
       v.created_at, v.updated_at, v.deleted_at, m.memory_type AS live_type,
       CASE WHEN m.version = v.version THEN m.vector END AS vector,
       m.expires_at, m.ttl_seconds, m.refresh_on_read, m.accessed_at
FROM memory_versions v
LEFT JOIN memories m ON m.namespace = v.namespace AND m.coord = v.coord
WHERE ($1::text IS NULL OR v.namespace = $1) AND ($2 OR m.coord IS NOT NULL)
ORDER BY v.namespace, v.coord, v.version
"""

# Links join two live memories of one namespace (foreign keys), so every link read here has both
# ends in the export read just before it, in the same snapshot.
_EXPORT_LINKS = """
SELECT namespace, from_coord, to_coord, link_type, strength, metadata, created_at
FROM memory_links WHERE ($1::text IS NULL OR namespace = $1)
ORDER BY namespace, from_coord, to_coord, link_type
"""

_COUNT_LINKS = "SELECT count(*) FROM memory_links WHERE ($1::text IS NULL OR namespace = $1)"

_COUNT = """
SELECT (SELECT count(*) FROM memories WHERE ($1::text IS NULL OR namespace = $1))
     + CASE WHEN $2 THEN (
         SELECT count(*) FROM memory_versions v
         WHERE v.deleted_at IS NOT NULL AND ($1::text IS NULL OR v.namespace = $1)
           AND v.version = (SELECT max(version) FROM memory_versions w
                            WHERE w.namespace = v.namespace AND w.coord = v.coord)
       ) ELSE 0 END
"""

# History rows first (kept when already there), then the live row moves forward to the last
# imported version only if it is behind (so a re-run, or a memory written since, is left alone),
# with the expiry and last read the file holds for it, and every live row that moved is enqueued
# for its vector. (A memory already expired is not written at all: ``import_histories``.)
_IMPORT = """
WITH history AS (
    INSERT INTO memory_versions
        (namespace, coord, version, memory_type, payload, importance, created_at, updated_at,
         deleted_at)
    SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::jsonb[],
                         $6::float8[], $7::timestamptz[], $8::timestamptz[], $18::timestamptz[])
    ON CONFLICT DO NOTHING
), input AS (
    SELECT namespace, coord, version, memory_type, payload, importance, created_at, updated_at,
           CASE WHEN vector IS NULL THEN NULL
                ELSE ARRAY(SELECT jsonb_array_elements_text(vector::jsonb)::real) END AS vector,
           expires_at, ttl_seconds, refresh_on_read, accessed_at
    FROM unnest($9::text[], $10::text[], $11::bigint[], $12::text[], $13::jsonb[],
                $14::float8[], $15::timestamptz[], $16::timestamptz[], $17::text[],
                $19::timestamptz[], $20::bigint[], $21::bool[], $22::timestamptz[])
        AS i(namespace, coord, version, memory_type, payload, importance, created_at,
             updated_at, vector, expires_at, ttl_seconds, refresh_on_read, accessed_at)
), live AS (
    INSERT INTO memories AS m (namespace, coord, memory_type, payload, importance, vector,
                               version, created_at, updated_at, expires_at, ttl_seconds,
                               refresh_on_read, accessed_at)
    SELECT namespace, coord, memory_type, payload, importance, vector, version, created_at,
           updated_at, expires_at, ttl_seconds, refresh_on_read, accessed_at
    FROM input ORDER BY namespace, coord
    ON CONFLICT (namespace, coord) DO UPDATE SET
        memory_type = EXCLUDED.memory_type,
        payload = EXCLUDED.payload,
        importance = EXCLUDED.importance,
        vector = EXCLUDED.vector,
        version = EXCLUDED.version,
        created_at = EXCLUDED.created_at,
        updated_at = EXCLUDED.updated_at,
        expires_at = EXCLUDED.expires_at,
        ttl_seconds = EXCLUDED.ttl_seconds,
        refresh_on_read = EXCLUDED.refresh_on_read,
        accessed_at = EXCLUDED.accessed_at
    WHERE m.version < EXCLUDED.version
    RETURNING namespace, coord, memory_type, payload, importance, version, created_at, updated_at,
              vector, expires_at, ttl_seconds, refresh_on_read, accessed_at
), pending AS (
    INSERT INTO pending_vectors (namespace, coord, version)
    SELECT namespace, coord, version FROM live
    ON CONFLICT (namespace, coord) DO UPDATE SET
        version = EXCLUDED.version, attempts = 0, last_error = NULL, retry_at = NULL,
        enqueued_at = now()
)
SELECT * FROM live
"""

# A memory at the same version here and in the file may still differ in what reads move without a
# new version: the expiry of a refresh_on_read memory and the last read. The later one wins (both
# only ever move forward), so a newer export over an older import catches up and a re-run is a
# no-op. Run after _IMPORT in its transaction: those rows are locked already.
_CATCH_UP = """
UPDATE memories AS m SET
    expires_at = CASE WHEN m.refresh_on_read THEN GREATEST(m.expires_at, i.expires_at)
                      ELSE m.expires_at END,
    accessed_at = GREATEST(m.accessed_at, i.accessed_at)
FROM unnest($1::text[], $2::text[], $3::bigint[], $4::timestamptz[], $5::timestamptz[])
    AS i(namespace, coord, version, expires_at, accessed_at)
WHERE m.namespace = i.namespace AND m.coord = i.coord AND m.version = i.version
  AND ((m.refresh_on_read AND i.expires_at > m.expires_at)
       OR i.accessed_at > m.accessed_at
       OR (m.accessed_at IS NULL AND i.accessed_at IS NOT NULL))
"""

# A link whose ends are both here (the memories come before their links in a file), with its
# original creation time; one already here is left as it is. ``skipped``: an end was missing.
_IMPORT_LINKS = """
WITH input AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::float8[],
                         $6::jsonb[], $7::timestamptz[])
        AS i(namespace, from_coord, to_coord, link_type, strength, metadata, created_at)
), joinable AS (
    SELECT * FROM input i
    WHERE EXISTS (SELECT 1 FROM memories m
                  WHERE m.namespace = i.namespace AND m.coord = i.from_coord)
      AND EXISTS (SELECT 1 FROM memories m
                  WHERE m.namespace = i.namespace AND m.coord = i.to_coord)
), added AS (
    INSERT INTO memory_links
        (namespace, from_coord, to_coord, link_type, strength, metadata, created_at)
    SELECT * FROM joinable ORDER BY namespace, from_coord, to_coord, link_type
    ON CONFLICT DO NOTHING
    RETURNING 1
)
SELECT (SELECT count(*) FROM added) AS added,
       (SELECT count(*) FROM input) - (SELECT count(*) FROM joinable) AS skipped
"""

# Every live memory owes its vector again. Dated in the past: these are not writes in flight,
# so a running service's reconciler takes them at once instead of waiting out its grace period.
_ENQUEUE_ALL = """
INSERT INTO pending_vectors (namespace, coord, version, enqueued_at)
SELECT namespace, coord, version, now() - interval '1 hour' FROM memories
WHERE ($1::text IS NULL OR namespace = $1)
ON CONFLICT (namespace, coord) DO UPDATE SET
    version = EXCLUDED.version, attempts = 0, last_error = NULL, retry_at = NULL,
    enqueued_at = least(pending_vectors.enqueued_at, EXCLUDED.enqueued_at)
"""

_BACKLOG = "SELECT count(*) FROM pending_vectors WHERE ($1::text IS NULL OR namespace = $1)"


def _record(row: asyncpg.Record) -> VersionRecord:
    return VersionRecord(
        version=row["version"],
        memory_type=row["memory_type"],
        payload=row["payload"],
        importance=row["importance"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        deleted_at=row["deleted_at"],
    )


def _history(row: asyncpg.Record) -> MemoryHistory:
    """A memory's history, its versions still to come, from its first export row."""
    if row["live_type"] is None:  # no live row: no expiry either
        return MemoryHistory(row["namespace"], row["coord"], row["memory_type"], [])
    return MemoryHistory(
        row["namespace"],
        row["coord"],
        row["live_type"],
        [],
        expires_at=row["expires_at"],
        ttl_seconds=row["ttl_seconds"],
        refresh_on_read=row["refresh_on_read"],
        accessed_at=row["accessed_at"],
    )


class PostgresTransfer:
    """Bulk reads and writes of whole memory histories on the canonical store."""

    def __init__(
        self,
        pool: Pool,
        *,
        prefetch: int = 1000,
        analyzer: Analyzer | None = None,
        row_security: bool = False,
    ) -> None:
        self._pool = pool
        self._row_security = row_security  # an export of one namespace runs confined to it
        self._prefetch = prefetch
        self._analyzer = analyzer  # told the rows imported (``postgres_analyze.py``)

    @_unavailable
    async def count(self, namespace: str | None = None, *, include_deleted: bool = False) -> int:
        """Live memories (of one namespace, or all), and deleted ones still kept if asked."""
        total: int = await self._pool.fetchval(_COUNT, namespace, include_deleted)
        return total

    @_unavailable
    async def count_links(self, namespace: str | None = None) -> int:
        """Links of the memory graph (of one namespace, or all)."""
        total: int = await self._pool.fetchval(_COUNT_LINKS, namespace)
        return total

    async def records(
        self, namespace: str | None = None, *, include_deleted: bool = False
    ) -> AsyncIterator[MemoryHistory | LinkRecord]:
        """Every memory with all its versions, ordered by namespace and coordinate (deleted
        memories whose history is still kept too when ``include_deleted``), then every link
        between them: both from one snapshot.

        Rows arrive ``prefetch`` at a time from server-side cursors; only one memory's history
        (or one link) is held at once.
        """
        try:
            async with (
                self._pool.acquire() as connection,
                connection.transaction(isolation="repeatable_read", readonly=True),
            ):
                if self._row_security and namespace is not None:
                    await confine(connection, namespace)
                current: MemoryHistory | None = None
                cursor = connection.cursor(
                    _EXPORT, namespace, include_deleted, prefetch=self._prefetch
                )
                async for row in cursor:
                    key = (row["namespace"], row["coord"])
                    if current is None or (current.namespace, current.coord) != key:
                        if current is not None:
                            yield current
                        current = _history(row)
                    current.versions.append(_record(row))
                    if row["vector"] is not None:
                        current.vector = list(row["vector"])
                    if row["live_type"] is None:  # no live row: the last version's type
                        current.memory_type = row["memory_type"]
                if current is not None:
                    yield current
                links = connection.cursor(_EXPORT_LINKS, namespace, prefetch=self._prefetch)
                async for row in links:
                    yield link_from_row(row, LinkRecord)
        except POSTGRES_DOWN as exc:
            raise BackendUnavailable("postgres", type(exc).__name__) from exc

    @_unavailable
    async def import_histories(
        self, histories: Sequence[MemoryHistory], *, now: datetime | None = None
    ) -> list[Memory]:
        """Write the histories in one transaction; return the live memories that moved (their
        vectors are owed, and already enqueued in the outbox). Idempotent. A history that ends
        in a delete is kept as history only: no live memory comes of it.

        At the same version, a later expiry (refresh_on_read) or last read in the file is taken.
        A memory that has expired by ``now`` (default: this machine's clock) is left out with
        its history, as the sweeper would delete both: nothing is written that no read could
        answer, and a re-run after a sweep brings nothing back."""
        moment = now if now is not None else datetime.now(UTC)
        histories = [h for h in histories if h.expires_at is None or h.expires_at > moment]
        if not histories:
            return []
        flat = [(h, v) for h in histories for v in h.versions]
        last = [(h, h.versions[-1]) for h in histories if h.versions[-1].deleted_at is None]
        async with self._pool.acquire() as connection, connection.transaction():
            rows = await connection.fetch(
                _IMPORT,
                *_columns(flat),
                *_columns(last),
                [json.dumps(h.vector) if h.vector is not None else None for h, _ in last],
                [v.deleted_at for _, v in flat],
                [h.expires_at for h, _ in last],
                [h.ttl_seconds for h, _ in last],
                [h.refresh_on_read for h, _ in last],
                [h.accessed_at for h, _ in last],
            )
            await connection.execute(
                _CATCH_UP,
                [h.namespace for h, _ in last],
                [h.coord for h, _ in last],
                [v.version for _, v in last],
                [h.expires_at for h, _ in last],
                [h.accessed_at for h, _ in last],
            )
        if self._analyzer is not None:
            self._analyzer.wrote(len(last))
        return [memory_from_row(row) for row in rows]

    @_unavailable
    async def import_links(self, links: Sequence[LinkRecord]) -> tuple[int, int]:
        """Write the links whose ends are both here, in one statement; return (links new here,
        links skipped for a missing end). Idempotent: a link already here is left as it is."""
        if not links:
            return 0, 0
        row = await self._pool.fetchrow(
            _IMPORT_LINKS,
            [k.namespace for k in links],
            [k.from_coord for k in links],
            [k.to_coord for k in links],
            [k.link_type for k in links],
            [k.strength for k in links],
            [k.metadata for k in links],
            [k.created_at for k in links],
        )
        return int(row["added"]), int(row["skipped"])

    @_unavailable
    async def enqueue_all(self, namespace: str | None = None) -> int:
        """Put every live memory (of one namespace, or all) in the vector outbox; return how
        many were enqueued."""
        status: str = await self._pool.execute(_ENQUEUE_ALL, namespace)
        return int(status.rsplit(" ", 1)[-1])

    @_unavailable
    async def backlog(self, namespace: str | None = None) -> int:
        """Entries still in the vector outbox (of one namespace, or all)."""
        count: int = await self._pool.fetchval(_BACKLOG, namespace)
        return count


def _columns(
    pairs: Sequence[tuple[MemoryHistory, VersionRecord]],
) -> tuple[list[object], ...]:
    return (
        [h.namespace for h, _ in pairs],
        [h.coord for h, _ in pairs],
        [v.version for _, v in pairs],
        [v.memory_type for _, v in pairs],
        [v.payload for _, v in pairs],
        [v.importance for _, v in pairs],
        [v.created_at for _, v in pairs],
        [v.updated_at for _, v in pairs],
    )
