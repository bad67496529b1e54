"""The schema is Alembic's: find the migrations, apply them, and check the database is at head."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from .errors import StartupError

MIGRATE_COMMAND = "somamemory migrate"


def alembic_ini_path() -> Path:
    """``SOMA_ALEMBIC_INI``, else ``./alembic.ini``, else the one beside the source tree."""
    candidates = [
        os.environ.get("SOMA_ALEMBIC_INI"),
        Path.cwd() / "alembic.ini",
        Path(__file__).resolve().parents[2] / "alembic.ini",
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise StartupError(
        "alembic.ini not found: run from the project directory or set SOMA_ALEMBIC_INI"
    )


def sqlalchemy_url(url: str) -> str:
    """The asyncpg flavour of a ``postgresql://`` URL, for SQLAlchemy and Alembic."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme not in ("postgresql", "postgres"):
        raise StartupError(f"POSTGRES_URL must start with postgresql://, not {parts.scheme}://")
    return urlunsplit(parts._replace(scheme="postgresql+asyncpg"))


def alembic_config(postgres_url: str) -> Config:
    config = Config(str(alembic_ini_path()))
    config.attributes["postgres_url"] = postgres_url
    return config


def upgrade_to_head(postgres_url: str) -> None:
    """``alembic upgrade head`` (blocking; call it off the event loop)."""
    command.upgrade(alembic_config(postgres_url), "head")


def downgrade_to_base(postgres_url: str) -> None:
    command.downgrade(alembic_config(postgres_url), "base")


def head_revision() -> str:
    script = ScriptDirectory.from_config(Config(str(alembic_ini_path())))
    head = script.get_current_head()
    assert head is not None, "the migrations directory has no revisions"
    return head


def known_revisions() -> list[str]:
    """Every revision of the migrations, oldest first (the last is the head)."""
    script = ScriptDirectory.from_config(Config(str(alembic_ini_path())))
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


async def current_revision(connection: asyncpg.Connection) -> str | None:
    """The revision recorded in the database, or None before the first migration."""
    exists = await connection.fetchval("SELECT to_regclass('alembic_version') IS NOT NULL")
    if not exists:
        return None
    revision: str | None = await connection.fetchval("SELECT version_num FROM alembic_version")
    return revision


async def require_head(connection: asyncpg.Connection) -> str:
    """Refuse to run on a schema that is not at head, naming the command that fixes it."""
    head = head_revision()
    current = await current_revision(connection)
    if current != head:
        raise StartupError(
            f"the database schema is at revision {current or 'none'}, this service needs {head}: "
            f"run `{MIGRATE_COMMAND}` (alembic upgrade head) against POSTGRES_URL first"
        )
    return head
