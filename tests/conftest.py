"""Real services for the tests: the machine's PostgreSQL and Redis, milvus-lite on disk.

Each session gets its own PostgreSQL database (migrated with Alembic) and Redis key prefix;
each test gets its own namespace, so tests are independent and never see each other's data.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis
from fastapi.testclient import TestClient

from somamemory.app import create_app
from somamemory.embedded import with_database
from somamemory.schema import upgrade_to_head
from somamemory.settings import Settings

from .milvus_server import MilvusLiteServer

ADMIN_URL = os.environ.get("SOMA_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_HOST = os.environ.get("SOMA_TEST_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("SOMA_TEST_REDIS_PORT", "6379"))
TOKEN = "test-token"
DIM = Settings.model_fields["embedding_dim"].default  # the default embedder's dimension


def free_port() -> int:
    """A TCP port nothing listens on (used for 'closed port' degradation tests too)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _admin(statement: str) -> None:
    connection = await asyncpg.connect(ADMIN_URL)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def create_database() -> str:
    """A fresh, empty database on the machine's PostgreSQL; returns its URL."""
    name = f"soma_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    return with_database(ADMIN_URL, name)


def drop_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextlib.contextmanager
def migrated_database() -> Iterator[str]:
    """A new database on the machine's PostgreSQL, migrated to head; dropped afterwards."""
    url = create_database()
    try:
        upgrade_to_head(url)
        yield url
    finally:
        drop_database(url)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    with migrated_database() as url:
        yield url


@contextlib.contextmanager
def _redis_keys(label: str) -> Iterator[str]:
    """A Redis key prefix on the machine's Redis; its keys are removed afterwards."""
    prefix = f"soma-{label}-{uuid.uuid4().hex[:8]}"
    yield prefix
    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT)
    keys = list(client.scan_iter(f"{prefix}:*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(scope="session")
def redis_prefix() -> Iterator[str]:
    with _redis_keys("test") as prefix:
        yield prefix


@pytest.fixture
def own_redis_prefix() -> Iterator[str]:
    """A Redis key prefix of the test's own (journals, caches), removed afterwards."""
    with _redis_keys("own") as prefix:
        yield prefix


@pytest.fixture(scope="session")
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT)
    yield client
    client.close()


@pytest.fixture(scope="session")
def make_settings(
    tmp_path_factory: pytest.TempPathFactory, database_url: str, redis_prefix: str
) -> Callable[..., Settings]:
    """Settings on the real services; keyword arguments override any field.

    The embedder is the product's default (the local model), as a user gets it. A test that does not
    judge meaning and writes a lot may pass ``force_hash_embeddings=True``, saying why.
    """

    def make(**overrides: Any) -> Settings:
        data_dir: Path = overrides.pop("data_dir", None) or tmp_path_factory.mktemp("data")
        values: dict[str, Any] = {
            "api_token": TOKEN,
            "postgres_url": database_url,
            "redis_host": REDIS_HOST,
            "redis_port": REDIS_PORT,
            "redis_key_prefix": redis_prefix,
            "milvus_uri": str(data_dir / "milvus.db"),
            "data_dir": data_dir,
            "connect_timeout_seconds": 2.0,
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture(scope="session")
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture(scope="session")
def client(settings: Settings) -> Iterator[TestClient]:
    """One app on PostgreSQL + Redis + milvus-lite for the whole session."""
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MilvusLiteServer]:
    """One networked milvus-lite server for the session (the http:// client path)."""
    server = MilvusLiteServer(tmp_path_factory.mktemp("milvus-server"), free_port()).start()
    yield server
    server.stop()


@pytest.fixture
def namespace() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def headers(namespace: str) -> dict[str, str]:
    """Auth and a namespace of this test's own."""
    return {"Authorization": f"Bearer {TOKEN}", "X-Soma-Namespace": namespace}


def pytest_report_header() -> str:
    from .api.test_contract import SEED

    return f"contract fuzzing seed: {SEED} (replay with SOMA_FUZZ_SEED={SEED})"
