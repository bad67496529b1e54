"""Alembic owns the schema: it upgrades, downgrades to nothing, and upgrades again."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from somamemory.schema import downgrade_to_base, head_revision, upgrade_to_head

from ..conftest import create_database, drop_database


@pytest.fixture
def empty_database() -> Iterator[str]:
    url = create_database()
    yield url
    drop_database(url)


async def _tables(url: str) -> set[str]:
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {row["tablename"] for row in rows}
    finally:
        await connection.close()


async def _revision(url: str) -> str | None:
    connection = await asyncpg.connect(url)
    try:
        return await connection.fetchval("SELECT version_num FROM alembic_version")
    finally:
        await connection.close()


def test_upgrade_downgrade_upgrade_round_trip(empty_database: str) -> None:
    upgrade_to_head(empty_database)
    assert {"memories", "memory_versions"} <= asyncio.run(_tables(empty_database))
    assert asyncio.run(_revision(empty_database)) == head_revision()

    downgrade_to_base(empty_database)
    assert asyncio.run(_tables(empty_database)) <= {"alembic_version"}

    upgrade_to_head(empty_database)
    assert {"memories", "memory_versions"} <= asyncio.run(_tables(empty_database))
    assert asyncio.run(_revision(empty_database)) == head_revision()


def test_migrate_command_brings_an_external_database_to_head(
    empty_database: str, tmp_path: Path
) -> None:
    import os
    import subprocess
    import sys

    log = tmp_path / "termination-log"
    env = {**os.environ, "POSTGRES_URL": empty_database, "SOMA_TERMINATION_LOG": str(log)}
    result = subprocess.run(
        [sys.executable, "-m", "somamemory.cli", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f"schema at revision {head_revision()}" in result.stdout
    assert asyncio.run(_revision(empty_database)) == head_revision()
    assert log.read_text().strip() == head_revision()  # what the operator reads from the pod


def test_config_prints_settings_with_secrets_redacted() -> None:
    import json
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "SOMA_API_TOKEN": "s3cret-token",
        "POSTGRES_URL": "postgresql://u:hunter2@db:5432/x",
        "REDIS_HOST": "cache",
    }
    result = subprocess.run(
        [sys.executable, "-m", "somamemory.cli", "config"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "s3cret-token" not in result.stdout and "hunter2" not in result.stdout
    shown = json.loads(result.stdout)
    assert shown["api_token"] == "***" and shown["postgres_url"] == "***"
    assert shown["redis_host"] == "cache" and shown["postgres"] == "external"
