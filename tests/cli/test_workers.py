"""``somamemory serve --workers 2`` as real processes on shared backends.

Concurrent writes to a few coordinates, spread over both workers, keep one order per coordinate:
versions gap-free, each acknowledged write's version once and with its own payload, and right
after each round the vector in Milvus is the one of the last commit (no write found its vector
overtaken by another's, which would have queued it again in the outbox). With Redis the
workers exclude each other through Redis; with Redis away, through PostgreSQL's advisory locks.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
import httpx
import pytest

from somamemory.embeddings import HashEmbedder, text_of
from somamemory.stores.milvus import MilvusVectorStore

from ..conftest import (
    DIM,
    REDIS_HOST,
    REDIS_PORT,
    free_port,
    migrated_database,
)
from ..milvus_server import MilvusLiteServer
from ..serve import Serve

ROUNDS = 6
COORDS = 3
WRITES = 8  # per coordinate and round, sent at once
WORKERS = 2


@pytest.fixture
def database() -> Iterator[str]:
    """A database of its own: the outbox it counts is this test's alone."""
    with migrated_database() as url:
        yield url


def wait_for_workers(serve: Serve, count: int, timeout: float = 120) -> None:
    """Until every worker has opened its backends (each logs it once)."""
    deadline = time.monotonic() + timeout
    while serve.output().count("Application startup complete") < count:
        assert serve.process.poll() is None, serve.output()
        assert time.monotonic() < deadline, f"workers not ready in {timeout}s:\n{serve.output()}"
        time.sleep(0.2)
    serve.wait_ready()


@pytest.fixture(scope="module")
def milvus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MilvusLiteServer]:
    """A Milvus server of this module's own: pymilvus keeps a shared connection open for the
    life of the test process, which must not idle against the session's server."""
    server = MilvusLiteServer(tmp_path_factory.mktemp("milvus-workers"), free_port()).start()
    yield server
    server.stop()


@pytest.fixture(params=["redis", "redis-away"])
def served(
    request: pytest.FixtureRequest, tmp_path: Path, database: str, milvus: MilvusLiteServer
) -> Iterator[tuple[Serve, MilvusVectorStore]]:
    collection = f"workers_{uuid.uuid4().hex[:8]}"
    # created (and opened) here first: the milvus-lite server stand-in opens a collection on its
    # first use without a lock, and two workers' first uses at once can drop writes
    vectors = MilvusVectorStore.connect(
        milvus.uri, collection=collection, dim=DIM, token=None, timeout=10
    )
    redis_port = REDIS_PORT if request.param == "redis" else free_port()  # nothing listens
    serve = Serve(
        tmp_path / "data",
        {
            "SOMA_WORKERS": str(WORKERS),
            "POSTGRES_URL": database,
            "REDIS_HOST": REDIS_HOST,
            "REDIS_PORT": str(redis_port),
            "SOMA_REDIS_KEY_PREFIX": f"soma-test-{uuid.uuid4().hex[:8]}",
            "SOMA_MILVUS_URI": milvus.uri,
            "SOMA_MILVUS_COLLECTION": collection,
            "SOMA_FORCE_HASH_EMBEDDINGS": "1",  # judges order, not meaning: one vector per text
            "SOMA_LOCK_TIMEOUT_SECONDS": "60",  # a busy machine slows writes, not their order
            "SOMA_CONNECT_TIMEOUT_SECONDS": "2",
        },
    )
    try:
        wait_for_workers(serve, WORKERS)
        yield serve, vectors
    finally:
        serve.stop()
        asyncio.run(vectors.close())
    assert serve.process.returncode == 0, serve.output()  # every worker stopped cleanly
    if request.param == "redis-away":
        assert "Redis at 127.0.0.1" in serve.output()  # the workers ran without it


def write(url: str, headers: dict[str, str], coord: str, text: str) -> tuple[str, int]:
    """One write on a connection of its own (so the workers take turns accepting)."""
    response = httpx.post(
        f"{url}/memories",
        json={"coord": coord, "payload": {"text": text}},
        headers=headers,
        timeout=120,
    )
    assert response.status_code == 200, response.text
    return text, int(response.json()["version"])


async def _owed(database: str, namespace: str) -> int:
    connection = await asyncpg.connect(database)
    try:
        count: int = await connection.fetchval(
            "SELECT count(*) FROM pending_vectors WHERE namespace = $1", namespace
        )
    finally:
        await connection.close()
    return count


def posts_counted_by_the_answering_worker(url: str) -> int:
    """Each worker keeps its own metrics: /metrics answers with one worker's count of writes."""
    text = httpx.get(f"{url}/metrics", timeout=30).text
    found = re.search(
        r'^somamemory_http_requests_total\{method="POST",route="/memories",status="200"\} (\S+)$',
        text,
        re.MULTILINE,
    )
    return int(float(found.group(1))) if found else 0


@pytest.mark.timeout(600)
def test_two_workers_keep_one_order_per_coordinate(
    served: tuple[Serve, MilvusVectorStore], database: str, namespace: str
) -> None:
    serve, vectors = served
    headers = {**serve.headers(), "X-Soma-Namespace": namespace}
    coords = [f"{n},7" for n in range(COORDS)]
    acknowledged: dict[str, dict[int, str]] = {coord: {} for coord in coords}
    embedder = HashEmbedder(DIM)

    with ThreadPoolExecutor(COORDS * WRITES) as pool:
        for number in range(ROUNDS):
            sent = [(c, f"{c} round {number} write {i}") for i in range(WRITES) for c in coords]
            futures = [pool.submit(write, serve.url, headers, c, text) for c, text in sent]
            for (coord, _), future in zip(sent, futures, strict=True):
                text, version = future.result()
                assert version not in acknowledged[coord], f"version {version} given twice"
                acknowledged[coord][version] = text

            # every vector was written in commit order: none was queued again as overtaken
            assert asyncio.run(_owed(database, namespace)) == 0, f"round {number}"
            for coord in coords:
                got = httpx.get(f"{serve.url}/memories/{coord}", headers=headers, timeout=30)
                last = got.json()["memory"]
                assert last["version"] == len(acknowledged[coord])  # the cache is not behind
                assert last["payload"]["text"] == acknowledged[coord][last["version"]]
                expected = asyncio.run(embedder.embed([text_of(last["payload"])]))[0]
                stored = asyncio.run(vectors.get_vector(namespace, last["coord"]))
                assert stored == pytest.approx(expected, abs=1e-5), f"round {number}: stale vector"

    total = ROUNDS * COORDS * WRITES
    for coord in coords:
        response = httpx.get(
            f"{serve.url}/memories/{coord}/versions",
            params={"limit": 1000},
            headers=headers,
            timeout=30,
        )
        history = {v["version"]: v["payload"]["text"] for v in response.json()["versions"]}
        assert sorted(history) == list(range(1, ROUNDS * WRITES + 1))  # gap-free
        assert history == acknowledged[coord]  # each acknowledged write exactly once, as its own

    # both workers served writes: either one's count is neither none nor all of them
    assert 0 < posts_counted_by_the_answering_worker(serve.url) < total

    # every worker runs the bounded HTTP protocol: a head past the limit is refused, not read on
    for _ in range(4):
        assert refused_head(serve.port)


def refused_head(port: int) -> bool:
    """Whether a 200 KiB request head (over the default 64 KiB) is refused with 431 or cut off."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        try:
            sock.sendall(b"GET /readyz HTTP/1.1\r\nhost: localhost\r\nx-junk: " + b"a" * 204_800)
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        except ConnectionResetError:  # closed with the head unread: refused all the same
            return True
        except TimeoutError:  # still reading it
            return False
    return answer == b"" or answer.startswith(b"HTTP/1.1 431")


def _environment(**extra: str) -> dict[str, str]:
    """This process's environment without any backend setting, plus ``extra``."""
    backend = ("POSTGRES_", "REDIS_", "SOMA_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(backend)}
    env.update(extra)
    return env


def _serve(data_dir: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "somamemory.cli", "serve", "--port", str(free_port())]
    return subprocess.run(
        [*command, "--data-dir", str(data_dir), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.mark.parametrize("external_postgres", [False, True])
def test_several_workers_refuse_the_embedded_default(
    tmp_path: Path, database_url: str, external_postgres: bool
) -> None:
    env = _environment(POSTGRES_URL=database_url) if external_postgres else _environment()
    ran = _serve(tmp_path / "data", env, "--workers", "2")
    assert ran.returncode == 2, ran.stderr
    assert "SOMA_MILVUS_URI=http://host:port" in ran.stderr
    assert ("POSTGRES_URL" in ran.stderr) is not external_postgres
    assert not (tmp_path / "data" / "postgres").exists()  # no embedded server was started


@pytest.mark.timeout(300)
def test_workers_that_cannot_start_stop_the_service(tmp_path: Path, database_url: str) -> None:
    closed = f"http://127.0.0.1:{free_port()}"  # no Milvus there: every worker refuses to start
    env = _environment(
        POSTGRES_URL=database_url,
        SOMA_MILVUS_URI=closed,
        SOMA_WORKERS="2",
        SOMA_CONNECT_TIMEOUT_SECONDS="1",
        SOMA_FORCE_HASH_EMBEDDINGS="1",
    )
    ran = _serve(tmp_path / "data", env)
    assert ran.returncode == 1, ran.stderr
    assert f"Milvus at {closed} is unreachable" in ran.stderr
