"""Redis going away while writes run concurrently, and coming back (empty, or with its data).

Recovery is judged by the data, never by a health flag: every acknowledged write is in
PostgreSQL with gap-free versions, GET answers each coordinate's last committed version (no
entry cached before the outage comes back), and Milvus (read directly) holds each coordinate's
last vector. The Redis here is a private throwaway server, never the machine's shared one.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from somamemory.app import create_app
from somamemory.settings import Settings
from somamemory.stores.redis_cache_entries import memory_json

from ..conftest import TOKEN, free_port, migrated_database
from ..milvus_server import MilvusLiteServer
from ..search.test_milvus_outage import milvus_versions, wait_until
from .test_postgres_outage import stored_versions

NAMESPACE = "redis-outage"
AUTH = {"Authorization": f"Bearer {TOKEN}", "X-Soma-Namespace": NAMESPACE}


class PrivateRedis:
    """A redis-server on a port of its own; ``persistent`` keeps its data across a restart
    (append-only file, as docker-compose.yml runs Redis), else it comes back empty."""

    def __init__(self, *, persistent: bool = False) -> None:
        self.port = free_port()
        self.persistent = persistent
        self.dir = Path(tempfile.mkdtemp(prefix="soma-redis-"))
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        executable = shutil.which("redis-server") or "/usr/bin/redis-server"
        persistence = ["--appendonly", "yes", "--appendfsync", "always"]
        self.process = subprocess.Popen(
            [
                executable,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.dir),
                "--save",
                "",
                *(persistence if self.persistent else ["--appendonly", "no"]),
            ],
            stdout=subprocess.DEVNULL,
        )
        client = self.client()
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "private redis did not start"
                time.sleep(0.05)
        client.close()

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    server.start()
    yield server
    server.stop()
    server.remove()


@pytest.fixture
def persistent_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis(persistent=True)
    server.start()
    yield server
    server.stop()
    server.remove()


@pytest.fixture
def database() -> Iterator[str]:
    with migrated_database() as url:  # its own: no other app's reconciler may settle its outbox
        yield url


@pytest.fixture
def milvus(tmp_path: Path) -> Iterator[MilvusLiteServer]:
    """A networked Milvus of this test's own, so the test can read it directly."""
    server = MilvusLiteServer(tmp_path / "milvus", free_port()).start()
    yield server
    server.stop()


class Workload:
    """Writer threads (and optionally a reader) on a few coordinates of one namespace.

    It records what the writers were told (coord -> {version: payload}), how many writes were
    acknowledged in each phase, every failed request, and every read older than a write
    acknowledged before that read began.
    """

    def __init__(self, client: TestClient, coords: list[str], auth: dict[str, str]) -> None:
        self.client, self.coords, self.auth = client, coords, auth
        self.acknowledged: dict[str, dict[int, dict[str, str]]] = defaultdict(dict)
        self.in_phase: dict[str, int] = defaultdict(int)
        self.failures: list[str] = []
        self.stale_reads: list[str] = []
        self.phase = "before"
        self._lock = threading.Lock()
        self._running = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self, writers: int, *, reader: bool) -> None:
        self._running.set()
        self._threads = [threading.Thread(target=self._write, args=(w,)) for w in range(writers)]
        if reader:
            self._threads.append(threading.Thread(target=self._read))
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._running.clear()
        for thread in self._threads:
            thread.join(timeout=60)

    def enter(self, phase: str, writes: int) -> None:
        """Count writes under ``phase`` from now on, and wait until ``writes`` are acknowledged."""
        self.phase = phase
        wait_until(lambda: self.in_phase[phase] >= writes, f"{writes} writes {phase}")

    def last(self, coord: str) -> tuple[int, dict[str, str]]:
        version = max(self.acknowledged[coord])
        return version, self.acknowledged[coord][version]

    def _write(self, worker: int) -> None:
        choose = random.Random(worker).choice
        n = 0
        while self._running.is_set():
            coord, phase = choose(self.coords), self.phase
            payload = {"text": f"writer {worker} write {n} at {coord} {phase}"}
            n += 1
            body = {"coord": coord, "payload": payload}
            response = self.client.post("/memories", json=body, headers=self.auth)
            with self._lock:
                if response.status_code != 200:
                    self.failures.append(f"{response.status_code} {response.text}")
                    continue
                version = response.json()["version"]
                if version in self.acknowledged[coord]:
                    self.failures.append(f"{coord} v{version} acknowledged twice")
                self.acknowledged[coord][version] = payload
                self.in_phase[phase] += 1

    def _read(self) -> None:
        n = 0
        while self._running.is_set():
            coord = self.coords[n % len(self.coords)]
            n += 1
            with self._lock:
                floor = max(self.acknowledged.get(coord, {}), default=0)
            got = self.client.get(f"/memories/{coord}", headers=self.auth)
            if got.status_code == 404 and floor == 0:
                continue
            if got.status_code != 200:
                self.failures.append(f"GET {got.status_code} {got.text}")
            elif (version := got.json()["memory"]["version"]) < floor:
                self.stale_reads.append(f"{self.phase}: {coord} read v{version} after v{floor}")


def test_concurrent_writes_through_a_redis_outage_lose_nothing(
    private_redis: PrivateRedis,
    database: str,
    milvus: MilvusLiteServer,
    make_settings: Callable[..., Settings],
) -> None:
    """Writers contending on a few coordinates run while Redis goes down and comes back (empty,
    as a Redis without persistence does). No write fails; every acknowledged write is in
    PostgreSQL once, versions gap-free; once every coordinate has been written again after the
    return, GET answers its last version and Redis caches it; Milvus holds every coordinate's
    last vector, and search finds it.
    """
    settings = make_settings(
        redis_port=private_redis.port,
        postgres_url=database,
        milvus_uri=milvus.uri,
        connect_timeout_seconds=0.5,
        reconcile_interval_seconds=0.5,
        force_hash_embeddings=True,  # hundreds of writes; meaning is not judged here
    )
    coords = [f"{i}.0" for i in range(4)]
    with TestClient(create_app(settings)) as client:
        work = Workload(client, coords, AUTH)
        work.start(writers=4, reader=False)
        try:
            work.enter("before", 3 * len(coords))
            private_redis.stop()
            work.enter("outage", 3 * len(coords))
            assert client.get("/health", headers=AUTH).json()["backends"]["redis"]["ok"] is False
            private_redis.start()
            work.enter("after", 3 * len(coords))
            work.enter("settled", 10 * len(coords))  # well after the return, on every coord
        finally:
            work.stop()

        assert work.failures == []
        stored = stored_versions(database, NAMESPACE)
        assert set(stored) == set(coords)
        for coord in coords:  # exactly the acknowledged writes, each once, versions 1..n
            assert stored[coord] == work.acknowledged[coord], coord
            assert sorted(stored[coord]) == list(range(1, len(stored[coord]) + 1)), coord
        for coord in coords:  # the last committed version
            version, payload = work.last(coord)
            memory = client.get(f"/memories/{coord}", headers=AUTH).json()["memory"]
            assert (memory["version"], memory["payload"]) == (version, payload), coord

        # Redis is used again: the returned (empty) server caches each last version
        back = private_redis.client()
        try:
            for coord in coords:
                cached = back.get(f"{settings.redis_key_prefix}:cache:{NAMESPACE}:{coord}")
                assert cached is not None, coord
                found = memory_json(cached)  # a value, not a tombstone or a lease
                assert found is not None, coord
                assert json.loads(found)["version"] == work.last(coord)[0], coord
        finally:
            back.close()

        # Milvus itself holds each coordinate's last version (the reconciler repairs a vector
        # that landed out of order), and search finds it by its own text
        last = {coord: work.last(coord)[0] for coord in coords}
        wait_until(
            lambda: milvus_versions(milvus.uri, NAMESPACE) == last,
            "Milvus holds every coordinate's last vector",
            seconds=60,
            shown=lambda: (milvus_versions(milvus.uri, NAMESPACE), last),
        )
        for coord in coords:
            version, payload = work.last(coord)
            hits = client.post(
                "/memories/search", json={"query": payload["text"], "top_k": 1}, headers=AUTH
            ).json()["memories"]
            assert (hits[0]["coord"], hits[0]["version"]) == (coord, version)
            assert hits[0]["similarity"] > 0.999  # the very vector of the last write


def test_a_cache_entry_from_before_the_outage_is_not_served_after_redis_returns(
    persistent_redis: PrivateRedis, make_settings: Callable[..., Settings]
) -> None:
    """Redis restarts with its data (append-only file, as docker-compose.yml runs it): a write
    made while it was away must not be hidden by the entry cached before the outage."""
    settings = make_settings(
        redis_port=persistent_redis.port,
        connect_timeout_seconds=0.5,
        redis_key_prefix=f"soma-redis-outage-{uuid.uuid4().hex[:8]}",
    )
    auth = {**AUTH, "X-Soma-Namespace": f"redis-return-{uuid.uuid4().hex[:8]}"}
    with TestClient(create_app(settings)) as client:
        first = client.post("/memories", json={"coord": "1", "payload": {"v": 1}}, headers=auth)
        assert first.json()["version"] == 1
        assert client.get("/memories/1", headers=auth).json()["memory"]["version"] == 1

        persistent_redis.stop()
        second = client.post("/memories", json={"coord": "1", "payload": {"v": 2}}, headers=auth)
        assert second.status_code == 200 and second.json()["version"] == 2
        assert client.get("/memories/1", headers=auth).json()["memory"]["payload"] == {"v": 2}

        persistent_redis.start()
        got = client.get("/memories/1", headers=auth).json()["memory"]
        assert (got["version"], got["payload"]) == (2, {"v": 2})
