"""Alembic environment: the URL comes from the service settings, never from alembic.ini."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.ext.asyncio import create_async_engine

from somamemory.schema import sqlalchemy_url
from somamemory.settings import Settings
from somamemory.stores.tables import metadata

config = context.config

# What autogenerate and `alembic check` compare the database with: columns, types, nullability,
# server defaults and indexes (Alembic does not compare CHECK constraints).
_COMPARE = {"target_metadata": metadata, "compare_type": True, "compare_server_default": True}


def _url() -> str:
    url = config.attributes.get("postgres_url") or Settings().postgres_url
    return sqlalchemy_url(url)


def run_migrations_offline() -> None:
    context.configure(url=_url(), literal_binds=True, **_COMPARE)
    with context.begin_transaction():
        context.run_migrations()


def _run_sync(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(connection=connection, transaction_per_migration=True, **_COMPARE)
    with context.begin_transaction():
        context.run_migrations()


async def run_migrations_online() -> None:
    engine = create_async_engine(_url())
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_sync)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_migrations_online())
