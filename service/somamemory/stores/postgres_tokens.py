"""Minted API tokens in PostgreSQL (table ``api_tokens``), by the digest of their secret."""

from __future__ import annotations

import asyncpg

from ..principals import Role, TokenRecord
from .postgres_pool import DEFAULT_TIMEOUT, Pool, bounded

_COLUMNS = "id, role, namespaces, created_at, expires_at, revoked_at, description"
_CREATE = """
INSERT INTO api_tokens (id, digest, role, namespaces, created_at, expires_at, description)
VALUES ($1, $2, $3, $4, $5, $6, $7)
"""
_FIND = f"SELECT {_COLUMNS} FROM api_tokens WHERE digest = $1"
_LIST = f"SELECT {_COLUMNS} FROM api_tokens WHERE revoked_at IS NULL ORDER BY created_at, id"
_REVOKE = f"""
UPDATE api_tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL
RETURNING {_COLUMNS}
"""


def _record(row: asyncpg.Record) -> TokenRecord:
    role: Role = row["role"]
    return TokenRecord(
        id=row["id"],
        role=role,
        namespaces=tuple(row["namespaces"]),
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        description=row["description"],
    )


class PostgresTokenStore:
    """Every call answers within ``timeout`` seconds, else ``BackendUnavailable``."""

    name = "postgres"
    answered_at = 0.0  # see Budgeted

    def __init__(self, pool: Pool, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._pool = pool
        self.timeout = timeout

    @bounded
    async def create(self, record: TokenRecord, digest: bytes) -> None:
        await self._pool.execute(
            _CREATE,
            record.id,
            digest,
            record.role,
            list(record.namespaces),
            record.created_at,
            record.expires_at,
            record.description,
        )

    @bounded
    async def find(self, digest: bytes) -> TokenRecord | None:
        row = await self._pool.fetchrow(_FIND, digest)
        return _record(row) if row is not None else None

    @bounded
    async def list(self) -> list[TokenRecord]:
        return [_record(row) for row in await self._pool.fetch(_LIST)]

    @bounded
    async def revoke(self, token_id: str) -> TokenRecord | None:
        row = await self._pool.fetchrow(_REVOKE, token_id)
        return _record(row) if row is not None else None
