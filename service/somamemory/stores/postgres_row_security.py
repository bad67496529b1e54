"""PostgreSQL row-level security: a namespace's statements see only that namespace's rows.

A second line of defence behind the ``WHERE namespace = ...`` every statement carries. With
``SOMA_POSTGRES_ROW_SECURITY`` on, each statement that answers one namespace's request runs in a
transaction that names the namespace (``soma.namespace``), and the tables' policies (migration
0011) hide every other namespace's rows from it and refuse to write them. Work that spans
namespaces (the reconciler, expiry sweeps, group-committed writes of several namespaces, journal
replay) names none and is not confined.

The policies bind a role only when it is neither a superuser nor ``BYPASSRLS``, and its tables
have row security enabled (and forced, if the role owns them): ``require_row_security`` checks
this at startup, enabling it on the tables the role owns.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import asyncpg

from ..errors import StartupError
from .postgres_pool import Pool

log = logging.getLogger(__name__)

# the tables whose rows belong to one namespace; each has the ``namespace_confinement`` policy
CONFINED_TABLES = ("memories", "memory_versions", "memory_links", "pending_vectors")
_NAME = "SELECT set_config('soma.namespace', $1, true)"

_ROLE = """
SELECT current_user AS role, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user
"""
_TABLES = """
SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
       pg_has_role(c.relowner, 'MEMBER') AS owned,
       EXISTS (SELECT 1 FROM pg_policy p
               WHERE p.polrelid = c.oid AND p.polname = 'namespace_confinement') AS has_policy
FROM pg_class c WHERE c.oid = ANY(SELECT to_regclass(t) FROM unnest($1::text[]) t)
"""


class Confinement:
    """Where one namespace's statements run: a pooled connection, inside a transaction that
    names the namespace when row security is on (three round trips more: BEGIN, the setting,
    COMMIT); the pool's own connection, as before, when it is off."""

    def __init__(self, pool: Pool, *, enabled: bool) -> None:
        self._pool = pool
        self.enabled = enabled

    def connection(self, namespace: str) -> AbstractAsyncContextManager[asyncpg.Connection]:
        if not self.enabled:
            return self._pool.acquire()  # nothing added to the call's path
        return self._confined(namespace)

    @asynccontextmanager
    async def _confined(self, namespace: str) -> AsyncIterator[asyncpg.Connection]:
        async with self._pool.acquire() as held, held.transaction():
            await confine(held, namespace)
            yield held


async def confine(connection: asyncpg.Connection, namespace: str) -> None:
    """Name ``namespace`` for the rest of ``connection``'s current transaction."""
    await connection.execute(_NAME, namespace)


async def require_row_security(connection: asyncpg.Connection) -> None:
    """Make sure the policies bind this connection's role; StartupError saying what to change
    when they cannot. Enables (and forces) row security on the tables the role owns."""
    role = await connection.fetchrow(_ROLE)
    if role["rolsuper"] or role["rolbypassrls"]:
        why = "a superuser" if role["rolsuper"] else "BYPASSRLS"
        raise StartupError(
            f"SOMA_POSTGRES_ROW_SECURITY is on, but PostgreSQL role {role['role']!r} is {why}, "
            "which row-level security never binds: connect as a role without it"
        )
    rows = await connection.fetch(_TABLES, list(CONFINED_TABLES))
    unprepared = [row["relname"] for row in rows if not row["has_policy"]]
    if unprepared or len(rows) != len(CONFINED_TABLES):
        raise StartupError(
            "SOMA_POSTGRES_ROW_SECURITY is on, but the schema has no namespace policies: "
            "run `somamemory migrate` first"
        )
    out_of_reach = []
    for row in sorted(rows, key=lambda row: CONFINED_TABLES.index(row["relname"])):
        table = row["relname"]
        if row["owned"] and not (row["relrowsecurity"] and row["relforcerowsecurity"]):
            await connection.execute(
                f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY"
            )
            log.info("row-level security enabled on %s", table)
        elif not row["relrowsecurity"]:
            out_of_reach.append(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;")
    if out_of_reach:
        raise StartupError(
            f"SOMA_POSTGRES_ROW_SECURITY is on, but row security is disabled on tables role "
            f"{role['role']!r} does not own: ask their owner to run {' '.join(out_of_reach)}"
        )
