"""PostgreSQL, the canonical store (asyncpg pool), and the replay of the Redis-only journal."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime

import asyncpg

from ..errors import BackendUnavailable
from ..filters import SearchFilter
from ..models import Memory, MemoryType, NewMemory, TypeCounts
from . import postgres_expiry, postgres_history
from .answering import observed
from .postgres_analyze import Analyzer
from .postgres_keyword import KeywordHit, keyword_search
from .postgres_pool import DEFAULT_TIMEOUT, Pool, answered, bounded
from .postgres_row_security import Confinement, confine
from .postgres_rows import memory_from_row
from .protocols import JournalEntry

log = logging.getLogger(__name__)

# One statement per wave: insert or bump the versions (the row locks of ON CONFLICT serialise
# concurrent writers, so versions are gap-free; a memory written again after a delete continues
# after the history the delete kept), record each version in the history table, and
# enqueue its vector in the outbox (``pending_vectors``), all in the caller's transaction.
# Rows are locked in (namespace, coord) order so concurrent batches cannot deadlock.
_UPSERT_MANY = """
WITH input AS (
    SELECT namespace, coord, memory_type, payload, importance,
           CASE WHEN first IS NULL THEN NULL
                ELSE ($10::real[])[first:first + length - 1] END AS vector,
           expires_at, ttl_seconds, refresh_on_read
    FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::float8[], $6::int4[],
                $7::timestamptz[], $8::int8[], $9::bool[], $11::int4[])
        AS i(namespace, coord, memory_type, payload, importance, first, expires_at, ttl_seconds,
             refresh_on_read, length)
), current AS (
    INSERT INTO memories AS m (namespace, coord, memory_type, payload, importance, vector,
                               version, created_at, updated_at, expires_at, ttl_seconds,
                               refresh_on_read)
    SELECT namespace, coord, memory_type, payload, importance, vector,
           coalesce((SELECT max(h.version) FROM memory_versions h
                     WHERE h.namespace = input.namespace AND h.coord = input.coord), 0) + 1,
           now(), now(), expires_at, ttl_seconds, refresh_on_read
    FROM input ORDER BY namespace, coord
    ON CONFLICT (namespace, coord) DO UPDATE SET
        memory_type = EXCLUDED.memory_type,
        payload = EXCLUDED.payload,
        importance = EXCLUDED.importance,
        vector = EXCLUDED.vector,
        version = m.version + 1,
        updated_at = clock_timestamp(),
        expires_at = EXCLUDED.expires_at,
        ttl_seconds = EXCLUDED.ttl_seconds,
        refresh_on_read = EXCLUDED.refresh_on_read
    RETURNING namespace, coord, memory_type, payload, importance, version, created_at, updated_at,
              expires_at, ttl_seconds, refresh_on_read
), history AS (
    INSERT INTO memory_versions
        (namespace, coord, version, memory_type, payload, importance, created_at, updated_at)
    SELECT namespace, coord, version, memory_type, payload, importance, created_at, updated_at
    FROM current
), pending AS (
    INSERT INTO pending_vectors (namespace, coord, version)
    SELECT namespace, coord, version FROM current
    ON CONFLICT (namespace, coord) DO UPDATE SET
        version = EXCLUDED.version, attempts = 0, last_error = NULL, retry_at = NULL,
        enqueued_at = now()
)
SELECT * FROM current
"""

# expiry: a memory whose expires_at is past ``now`` ($n, the service's clock) is never answered
_LIVE = "(expires_at IS NULL OR expires_at > COALESCE({now}::timestamptz, now()))"
_COLUMNS = """namespace, coord, memory_type, payload, importance, version, created_at, updated_at,
       expires_at, ttl_seconds, refresh_on_read, accessed_at"""

_GET = f"""
SELECT {_COLUMNS}
FROM memories WHERE namespace = $1 AND coord = $2 AND {_LIVE.format(now="$3")}
"""

_GET_MANY_FROM = f"""
FROM memories WHERE namespace = $1 AND coord = ANY($2::text[]) AND {_LIVE.format(now="$3")}
"""
# a search's hits need no vectors: decoding 384 floats a row was a third of their read's CPU
_GET_MANY = f"SELECT {_COLUMNS}{_GET_MANY_FROM}"
_GET_MANY_WITH_VECTORS = f"SELECT {_COLUMNS}, vector{_GET_MANY_FROM}"

# a live memory's history only: a deleted one's is kept for time travel reads alone
_VERSIONS = f"""
SELECT namespace, coord, memory_type, payload, importance, version, created_at, updated_at
FROM memory_versions WHERE namespace = $1 AND coord = $2 AND version > $3
  AND EXISTS (SELECT 1 FROM memories WHERE namespace = $1 AND coord = $2
              AND {_LIVE.format(now="$5")})
ORDER BY version LIMIT $4
"""

# The history stays, its last version stamped with the delete (time travel reads it until the
# purge, ``postgres_history.py``); the memory's links go with the row (ON DELETE CASCADE).
_DELETE = """
WITH gone AS (DELETE FROM memories WHERE namespace = $1 AND coord = $2 RETURNING version),
     history AS (
        UPDATE memory_versions v SET deleted_at = clock_timestamp() FROM gone
        WHERE v.namespace = $1 AND v.coord = $2 AND v.version = gone.version
     ),
     pending AS (
        INSERT INTO pending_vectors (namespace, coord, version) VALUES ($1, $2, 0)
        ON CONFLICT (namespace, coord) DO UPDATE SET
            version = 0, attempts = 0, last_error = NULL, retry_at = NULL, enqueued_at = now()
     )
SELECT coalesce(max(version), 0) FROM gone
"""

_COUNTS = f"""
SELECT memory_type, count(*) FROM memories WHERE namespace = $1 AND {_LIVE.format(now="$2")}
GROUP BY memory_type
"""


def _vector_slices(
    vectors: Sequence[list[float] | None],
) -> tuple[list[int | None], list[int | None], list[float]]:
    """The vectors as one flat ``real[]`` parameter (asyncpg sends it binary) with each one's
    1-based first index and length (None: no vector); a list inside an array parameter would
    be read as another dimension, and JSON text cost ~0.4 ms of float formatting per vector."""
    firsts: list[int | None] = []
    lengths: list[int | None] = []
    flat: list[float] = []
    for vector in vectors:
        if vector is None:
            firsts.append(None)
            lengths.append(None)
        else:
            firsts.append(len(flat) + 1)
            lengths.append(len(vector))
            flat.extend(vector)
    return firsts, lengths, flat


def _waves(memories: Sequence[NewMemory]) -> list[list[int]]:
    """Indexes split so no wave names a (namespace, coord) twice: the n-th write of a coord
    goes in wave n, which keeps every coord's writes in their order."""
    waves: list[list[int]] = []
    seen: dict[tuple[str, str], int] = {}
    for index, memory in enumerate(memories):
        key = (memory.namespace, memory.coord)
        wave = seen.get(key, 0)
        seen[key] = wave + 1
        if wave == len(waves):
            waves.append([])
        waves[wave].append(index)
    return waves


async def put_many_in(
    connection: asyncpg.Connection, memories: Sequence[NewMemory]
) -> list[Memory]:
    """Upsert many on a connection (inside the caller's transaction), in order."""
    results: list[Memory | None] = [None] * len(memories)
    for wave in _waves(memories):
        firsts, lengths, flat = _vector_slices([memories[i].vector for i in wave])
        rows = await connection.fetch(
            _UPSERT_MANY,
            [memories[i].namespace for i in wave],
            [memories[i].coord for i in wave],
            [memories[i].memory_type for i in wave],
            [memories[i].payload for i in wave],
            [memories[i].importance for i in wave],
            firsts,
            [memories[i].expires_at for i in wave],
            [memories[i].ttl_seconds for i in wave],
            [memories[i].refresh_on_read for i in wave],
            flat,
            lengths,
        )
        by_key = {(row["namespace"], row["coord"]): memory_from_row(row) for row in rows}
        for i in wave:
            results[i] = by_key[(memories[i].namespace, memories[i].coord)]
    return [memory for memory in results if memory is not None]


async def delete_in(connection: asyncpg.Connection, namespace: str, coord: str) -> bool:
    """Delete a memory on a connection (the caller's transaction); its history stays, marked."""
    return bool(await connection.fetchval(_DELETE, namespace, coord))


class PostgresStore:
    """Memories and versions in PostgreSQL; the source of truth.

    Every call answers within ``timeout`` seconds: a PostgreSQL away, or one that does not
    answer (a frozen server), is ``BackendUnavailable``. With ``row_security``, each call on
    one namespace runs confined to it (``postgres_row_security.py``).
    """

    name = "postgres"
    answered_at = 0.0  # see Budgeted

    def __init__(
        self, pool: Pool, *, timeout: float = DEFAULT_TIMEOUT, row_security: bool = False
    ) -> None:
        self._pool = pool
        self.timeout = timeout
        self.confinement = Confinement(pool, enabled=row_security)
        self._tenant = self.confinement.connection
        self.analyzer = Analyzer(pool, timeout=timeout)  # planner statistics after bulk writes

    async def put(self, memory: NewMemory) -> Memory:
        return (await self.put_many([memory]))[0]

    @bounded
    async def put_many(self, memories: Sequence[NewMemory]) -> list[Memory]:
        """Upsert many in one transaction; a coord given twice gets two versions, in order.
        Confined when they are all in one namespace (group commit often mixes several).

        Unconfined, with no coord given twice, the upsert is one statement, atomic alone: it
        runs without BEGIN and COMMIT, two round trips fewer."""
        namespaces = {memory.namespace for memory in memories}
        confined = self.confinement.enabled and len(namespaces) == 1
        distinct = len({(m.namespace, m.coord) for m in memories}) == len(memories)
        async with self._pool.acquire() as connection:
            if distinct and not confined:
                stored = await put_many_in(connection, memories)
            else:
                async with connection.transaction():
                    if confined:
                        await confine(connection, namespaces.pop())
                    stored = await put_many_in(connection, memories)
        self.analyzer.wrote(len(stored))
        return stored

    @bounded
    async def get(
        self, namespace: str, coord: str, *, now: datetime | None = None
    ) -> Memory | None:
        async with self._tenant(namespace) as connection:
            row = await connection.fetchrow(_GET, namespace, coord, now)
        return memory_from_row(row) if row is not None else None

    @bounded
    async def get_many(
        self,
        namespace: str,
        coords: Sequence[str],
        *,
        now: datetime | None = None,
        with_vectors: bool = False,
    ) -> dict[str, Memory]:
        query = _GET_MANY_WITH_VECTORS if with_vectors else _GET_MANY
        async with self._tenant(namespace) as connection:
            rows = await connection.fetch(query, namespace, list(coords), now)
        return {row["coord"]: memory_from_row(row) for row in rows}

    @bounded
    async def versions(
        self,
        namespace: str,
        coord: str,
        *,
        after: int = 0,
        limit: int | None = None,
        now: datetime | None = None,
    ) -> list[Memory]:
        async with self._tenant(namespace) as connection:
            rows = await connection.fetch(_VERSIONS, namespace, coord, after, limit, now)
        return [memory_from_row(row) for row in rows]

    @bounded
    async def as_of(self, namespace: str, coord: str, moment: datetime) -> Memory | None:
        """The version current at ``moment`` (``postgres_history.py``)."""
        async with self._tenant(namespace) as connection:
            return await postgres_history.as_of(connection, namespace, coord, moment)

    @bounded
    async def deletions(
        self, namespace: str, coord: str, *, after: int = 0, limit: int | None = None
    ) -> dict[int, datetime]:
        """When a delete ended a version, by version (an earlier life of the memory)."""
        async with self._tenant(namespace) as connection:
            return await postgres_history.deletions(
                connection, namespace, coord, after=after, limit=limit
            )

    @bounded
    async def purge_deleted(self, cutoff: datetime, limit: int) -> tuple[int, int]:
        """Drop up to ``limit`` histories deleted before ``cutoff``: (deletions, versions)."""
        return await postgres_history.purge(self._pool, cutoff, limit)

    @property
    def pool(self) -> Pool:
        """The pool, for bulk work beside the store's own calls (export and import)."""
        return self._pool

    @bounded
    async def delete(self, namespace: str, coord: str) -> int:
        async with self._tenant(namespace) as connection:
            removed: int = await connection.fetchval(_DELETE, namespace, coord)
        return removed

    @bounded
    async def counts(self, namespace: str, *, now: datetime | None = None) -> TypeCounts:
        async with self._tenant(namespace) as connection:
            rows = await connection.fetch(_COUNTS, namespace, now)
        by_type = {row["memory_type"]: row["count"] for row in rows}
        return TypeCounts(episodic=by_type.get("episodic", 0), semantic=by_type.get("semantic", 0))

    # ----- expiry and decay (postgres_expiry.py) ---------------------------------------------

    @bounded
    async def sweep_expired(self, now: datetime, limit: int) -> list[tuple[str, str]]:
        """Delete at most ``limit`` memories expired at ``now`` (vectors via the outbox)."""
        return await postgres_expiry.sweep_batch(self._pool, now, limit)

    @bounded
    async def refresh_expiry(self, namespace: str, coord: str, now: datetime) -> datetime | None:
        async with self._tenant(namespace) as connection:
            return await postgres_expiry.refresh(connection, namespace, coord, now)

    @bounded
    async def touch(self, reads: Sequence[tuple[str, str, datetime]]) -> None:
        await postgres_expiry.touch(self._pool, reads)

    @bounded
    async def least_important(
        self,
        namespace: str,
        now: datetime,
        *,
        cap: int,
        floor: float,
        half_lives: Mapping[MemoryType, float],
    ) -> list[str]:
        async with self._tenant(namespace) as connection:
            return await postgres_expiry.least_important(
                connection, namespace, now, cap=cap, floor=floor, half_lives=half_lives
            )

    @bounded
    async def keyword_search(
        self, text: str, *, where: SearchFilter, limit: int
    ) -> list[KeywordHit]:
        """Full-text recall over the payloads' strings (``postgres_keyword.py``), best first;
        confined, it reads the namespace's documents, as a policy keeps the index out of reach."""
        async with self._tenant(where.namespace) as connection:
            return await keyword_search(
                connection, text, where, limit, indexed=not self.confinement.enabled
            )

    @observed
    async def ping(self) -> None:
        try:
            await answered(self._pool.fetchval("SELECT 1"), self.timeout)
        except BackendUnavailable:
            raise
        except Exception as exc:  # a server error too: PostgreSQL cannot serve requests
            raise BackendUnavailable("postgres", type(exc).__name__) from exc

    @bounded
    async def apply_journal(
        self,
        journal: str,
        read: Callable[[str, int], Awaitable[Sequence[JournalEntry]]],
        limit: int,
    ) -> tuple[str, Sequence[JournalEntry]]:
        """Apply the next ``limit`` entries of ``journal`` (``read(after_id, limit)``) in one
        transaction that also records the last id applied; return that id and the entries
        (none: all applied). The record's row lock makes concurrent replicas take turns."""
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute(_JOURNAL_INIT, journal)
            last: str = await connection.fetchval(_JOURNAL_LAST, journal)
            entries = await read(last, limit)
            if entries:
                await _apply(connection, entries)
                last = entries[-1].id
                await connection.execute(_JOURNAL_SAVE, journal, last)
        self.analyzer.wrote(len(entries))
        return last, entries

    async def close(self) -> None:
        await self.analyzer.close()
        await self._pool.close()


_JOURNAL_LAST = "SELECT last_id FROM journal_replay WHERE journal = $1 FOR UPDATE"
_JOURNAL_INIT = (
    "INSERT INTO journal_replay (journal, last_id) VALUES ($1, '0') ON CONFLICT DO NOTHING"
)
_JOURNAL_SAVE = "UPDATE journal_replay SET last_id = $2 WHERE journal = $1"


async def _apply(connection: asyncpg.Connection, entries: Sequence[JournalEntry]) -> None:
    """Consecutive puts go in one multi-row upsert; deletes in between keep their place."""
    puts: list[JournalEntry] = []
    renumbered = 0
    for entry in [*entries, None]:
        if entry is not None and entry.op == "put":
            puts.append(entry)
            continue
        if puts:
            stored = await put_many_in(connection, [put.memory for put in puts])
            renumbered += sum(
                put.told is not None and put.told != memory.version
                for put, memory in zip(puts, stored, strict=True)
            )
            puts = []
        if entry is not None:
            await delete_in(connection, entry.memory.namespace, entry.memory.coord)
    if renumbered:
        log.warning(
            "replay stored %d journaled writes under other versions than their clients were "
            "told (memories the cache did not know when PostgreSQL went away)",
            renumbered,
        )
