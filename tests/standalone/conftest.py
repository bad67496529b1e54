"""Opt-in tier: the vector-store contract on a real Milvus standalone (2.3.5).

Run it with scripts/milvus-standalone-tests.sh (``SOMA_TEST_MILVUS_STANDALONE=1`` inside
``unshare -n``). Without the variable the tests here skip at collection; they use no
PostgreSQL or Redis, only the Milvus server started below.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import Iterator

import pytest

from somamemory.stores.milvus import MilvusVectorStore

from ..stores.test_vector_store import DIM
from .milvus_standalone import MilvusStandalone, only_loopback

PYTHON = os.environ.get("SOMA_TEST_MILVUS_PYTHON", "/tmp/milvus-venv/bin/python")


@pytest.fixture(scope="session")
def milvus_standalone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Milvus standalone for the session; yields its ``http://127.0.0.1:PORT`` URI."""
    if not only_loopback():
        pytest.fail(
            "Milvus standalone binds 0.0.0.0: run it only in a loopback-only network namespace "
            "(scripts/milvus-standalone-tests.sh uses unshare -n)"
        )
    if not os.access(PYTHON, os.X_OK):
        pytest.fail(f"{PYTHON} not found: run scripts/milvus-standalone-tests.sh to install it")
    base_dir = tmp_path_factory.mktemp("milvus-standalone")
    server = MilvusStandalone(PYTHON, base_dir).start()
    yield server.uri
    server.stop()
    for bulky in ("bin", "data"):  # 0.5 GB; the server's logs stay for a post-mortem
        shutil.rmtree(base_dir / "milvus" / bulky, ignore_errors=True)


@pytest.fixture
def store(milvus_standalone: str) -> Iterator[MilvusVectorStore]:
    """The contract's ``store`` on the standalone server (replaces lite/server, here only)."""
    collection = f"contract_{uuid.uuid4().hex[:8]}"
    opened = MilvusVectorStore.connect(
        milvus_standalone, collection=collection, dim=DIM, token=None, timeout=10
    )
    assert not opened.is_lite
    yield opened
    opened._client.drop_collection(collection)
    asyncio.run(opened.close())
