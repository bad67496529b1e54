"""Namespaces' own policies in PostgreSQL (table ``namespace_policies``)."""

from __future__ import annotations

from collections.abc import Mapping

import asyncpg

from ..models import POLICY_FIELDS, MemoryType, NamespacePolicy
from .postgres_pool import DEFAULT_TIMEOUT, Pool, bounded

_TYPES: tuple[MemoryType, ...] = ("episodic", "semantic")
_COLUMNS = "namespace, episodic_ttl_seconds, semantic_ttl_seconds, max_memories, updated_at"
_GET = f"SELECT {_COLUMNS} FROM namespace_policies WHERE namespace = $1"
# one statement, so two admins changing different fields at once both keep their change:
# $5..$7 say which of the fields $2..$4 were given (the others keep their value)
_UPDATE = f"""
INSERT INTO namespace_policies AS p
    (namespace, episodic_ttl_seconds, semantic_ttl_seconds, max_memories, updated_at)
VALUES ($1, $2, $3, $4, now())
ON CONFLICT (namespace) DO UPDATE SET
    episodic_ttl_seconds = CASE WHEN $5 THEN EXCLUDED.episodic_ttl_seconds
                                ELSE p.episodic_ttl_seconds END,
    semantic_ttl_seconds = CASE WHEN $6 THEN EXCLUDED.semantic_ttl_seconds
                                ELSE p.semantic_ttl_seconds END,
    max_memories = CASE WHEN $7 THEN EXCLUDED.max_memories ELSE p.max_memories END,
    updated_at = now()
RETURNING {_COLUMNS}
"""
_DELETE = "DELETE FROM namespace_policies WHERE namespace = $1"


def _policy(row: asyncpg.Record) -> NamespacePolicy:
    ttls = {kind: row[f"{kind}_ttl_seconds"] for kind in _TYPES}
    return NamespacePolicy(
        namespace=row["namespace"],
        default_ttl_seconds={kind: ttl for kind, ttl in ttls.items() if ttl is not None},
        max_memories=row["max_memories"],
        updated_at=row["updated_at"],
    )


class PostgresPolicyStore:
    """Every call answers within ``timeout`` seconds, else ``BackendUnavailable``."""

    name = "postgres"
    answered_at = 0.0  # see Budgeted

    def __init__(self, pool: Pool, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._pool = pool
        self.timeout = timeout

    @bounded
    async def get(self, namespace: str) -> NamespacePolicy | None:
        row = await self._pool.fetchrow(_GET, namespace)
        return _policy(row) if row is not None else None

    @bounded
    async def update(self, namespace: str, changes: Mapping[str, int | None]) -> NamespacePolicy:
        values = [changes.get(name) for name in POLICY_FIELDS]
        given = [name in changes for name in POLICY_FIELDS]
        row = await self._pool.fetchrow(_UPDATE, namespace, *values, *given)
        assert row is not None
        return _policy(row)

    @bounded
    async def delete(self, namespace: str) -> bool:
        status: str = await self._pool.execute(_DELETE, namespace)
        return status != "DELETE 0"
