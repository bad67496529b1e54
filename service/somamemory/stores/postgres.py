"""PostgreSQL, the canonical store (asyncpg pool)."""

from __future__ import annotations

import json
from collections.abc import Sequence

import asyncpg

from ..models import Memory, NewMemory, TypeCounts

# One statement: insert or bump the version (the row lock of ON CONFLICT serialises concurrent
# writers, so versions are gap-free), and record that version in the history table.
_UPSERT = """
WITH current AS (
    INSERT INTO memories AS m
        (namespace, coord, memory_type, payload, importance, version, created_at, updated_at)
    VALUES ($1, $2, $3, $4::jsonb, $5, 1, now(), now())
    ON CONFLICT (namespace, coord) DO UPDATE SET
        memory_type = EXCLUDED.memory_type,
        payload = EXCLUDED.payload,
        importance = EXCLUDED.importance,
        version = m.version + 1,
        updated_at = clock_timestamp()
    RETURNING namespace, coord, memory_type, payload, importance, version, created_at, updated_at
), history AS (
    INSERT INTO memory_versions
        (namespace, coord, version, memory_type, payload, importance, created_at, updated_at)
    SELECT namespace, coord, version, memory_type, payload, importance, created_at, updated_at
    FROM current
)
SELECT * FROM current
"""

_GET = """
SELECT namespace, coord, memory_type, payload, importance, version, created_at, updated_at
FROM memories WHERE namespace = $1 AND coord = $2
"""

_GET_MANY = """
SELECT namespace, coord, memory_type, payload, importance, version, created_at, updated_at
FROM memories WHERE namespace = $1 AND coord = ANY($2::text[])
"""

_VERSIONS = """
SELECT namespace, coord, memory_type, payload, importance, version, created_at, updated_at
FROM memory_versions WHERE namespace = $1 AND coord = $2 ORDER BY version
"""

_DELETE = """
WITH gone AS (DELETE FROM memories WHERE namespace = $1 AND coord = $2 RETURNING 1),
     history AS (DELETE FROM memory_versions WHERE namespace = $1 AND coord = $2)
SELECT count(*) FROM gone
"""

_COUNTS = """
SELECT memory_type, count(*) FROM memories WHERE namespace = $1 GROUP BY memory_type
"""


def _memory(row: asyncpg.Record) -> Memory:
    return Memory(
        namespace=row["namespace"],
        coord=row["coord"],
        memory_type=row["memory_type"],
        payload=row["payload"],
        importance=row["importance"],
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def _init_connection(connection: asyncpg.Connection) -> None:
    await connection.set_type_codec(
        "jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog", format="text"
    )


async def create_pool(url: str, *, min_size: int, max_size: int, timeout: float) -> asyncpg.Pool:
    """An asyncpg pool with JSONB decoded to Python objects."""
    pool: asyncpg.Pool = await asyncpg.create_pool(
        url,
        min_size=min_size,
        max_size=max_size,
        timeout=timeout,
        init=_init_connection,
        command_timeout=30,
    )
    return pool


class PostgresStore:
    """Memories and versions in PostgreSQL; the source of truth."""

    name = "postgres"

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def put(self, memory: NewMemory) -> Memory:
        row = await self._pool.fetchrow(
            _UPSERT,
            memory.namespace,
            memory.coord,
            memory.memory_type,
            memory.payload,
            memory.importance,
        )
        assert row is not None
        return _memory(row)

    async def get(self, namespace: str, coord: str) -> Memory | None:
        row = await self._pool.fetchrow(_GET, namespace, coord)
        return _memory(row) if row is not None else None

    async def get_many(self, namespace: str, coords: Sequence[str]) -> dict[str, Memory]:
        rows = await self._pool.fetch(_GET_MANY, namespace, list(coords))
        return {row["coord"]: _memory(row) for row in rows}

    async def versions(self, namespace: str, coord: str) -> list[Memory]:
        return [_memory(row) for row in await self._pool.fetch(_VERSIONS, namespace, coord)]

    async def delete(self, namespace: str, coord: str) -> bool:
        removed = await self._pool.fetchval(_DELETE, namespace, coord)
        return bool(removed)

    async def counts(self, namespace: str) -> TypeCounts:
        rows = await self._pool.fetch(_COUNTS, namespace)
        by_type = {row["memory_type"]: row["count"] for row in rows}
        return TypeCounts(episodic=by_type.get("episodic", 0), semantic=by_type.get("semantic", 0))

    async def ping(self) -> None:
        await self._pool.fetchval("SELECT 1", timeout=2)

    async def close(self) -> None:
        await self._pool.close()
