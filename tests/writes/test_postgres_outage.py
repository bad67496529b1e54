"""PostgreSQL away (stopped under load, or down when the service starts) and back: the service
goes Redis-only (journaling writes in Redis), then replays the journal into PostgreSQL, in order,
each write once, and leaves degraded mode. Search answers in Redis-only mode. The PostgreSQL
here is a private throwaway server, never the machine's shared one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
import pytest
import redis
from fastapi.testclient import TestClient

from somamemory.app import create_app
from somamemory.schema import upgrade_to_head
from somamemory.settings import Settings

from ..conftest import REDIS_HOST, REDIS_PORT, TOKEN, free_port

AUTH = {"Authorization": f"Bearer {TOKEN}", "X-Soma-Namespace": "outage"}
PG_BIN = Path("/usr/lib/postgresql") / sorted(os.listdir("/usr/lib/postgresql"))[-1] / "bin"


class PrivatePostgres:
    """initdb + pg_ctl on a port of its own, as the postgres user when run as root."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="soma-pg-"))
        self.root.chmod(0o755)
        self.data = self.root / "data"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self._run(PG_BIN / "initdb", "-D", self.data, "-A", "trust", "-U", "postgres")

    def _run(self, *command: object) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *map(str, command)], check=True, capture_output=True)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -h 127.0.0.1"
        self._run(
            PG_BIN / "pg_ctl",
            "-D",
            self.data,
            "-o",
            options,
            "-l",
            self.root / "log",
            "-w",
            "start",
        )

    def stop(self) -> None:
        self._run(PG_BIN / "pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    server.start()
    yield server
    with contextlib.suppress(subprocess.CalledProcessError):  # stopped already
        server.stop()
    server.remove()


def _wait_for_mode(client: TestClient, mode: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while client.get("/health", headers=AUTH).json()["mode"] != mode:
        assert time.monotonic() < deadline, f"never reached {mode} mode"
        time.sleep(0.1)


async def _rows(url: str, query: str) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(url)
    try:
        return await connection.fetch(query)
    finally:
        await connection.close()


def test_writes_survive_a_postgres_outage_and_replay_exactly_once(
    postgres: PrivatePostgres, make_settings: Callable[..., Settings]
) -> None:
    upgrade_to_head(postgres.url)
    prefix = f"soma-outage-{uuid.uuid4().hex[:8]}"
    settings = make_settings(
        postgres_url=postgres.url,
        redis_key_prefix=prefix,
        backend_check_seconds=0.2,
        connect_timeout_seconds=1.0,
    )
    acknowledged: dict[str, dict] = {}

    def store(coord: str, payload: dict) -> bool:
        response = client.post("/memories", json={"coord": coord, "payload": payload}, headers=AUTH)
        if response.status_code == 200:
            acknowledged[response.json()["coord"]] = payload
            return True
        assert response.status_code == 503, response.text  # never a 500, never a lie
        return False

    try:
        with TestClient(create_app(settings)) as client:
            for i in range(10):
                assert store(f"{i}", {"text": f"before {i}"})
            store("1", {"text": "before 1, second version"})

            running = threading.Event()
            running.set()

            def keep_writing(worker: int) -> None:  # load across the stop and the return
                n = 0
                while running.is_set():
                    store(f"{1000 + worker},{n}", {"text": f"load {worker} {n}"})
                    n += 1

            with ThreadPoolExecutor(4) as pool:
                writers = [pool.submit(keep_writing, w) for w in range(4)]
                time.sleep(0.3)
                postgres.stop()
                _wait_for_mode(client, "redis-only")
                time.sleep(0.3)
                postgres.start()
                _wait_for_mode(client, "normal")
                time.sleep(0.3)
                postgres.stop()  # and once more, for the part below
                _wait_for_mode(client, "redis-only")
                running.clear()
                for writer in writers:
                    writer.result()
            assert (
                sum(
                    c.endswith(".0") and float(c.split(",")[0]) >= 1000
                    for c in acknowledged
                    if "," in c
                )
                > 20
            )
            for i in range(100, 120):
                while not store(f"{i}", {"text": f"during {i}"}):
                    time.sleep(0.05)
            assert store("100", {"text": "during 100, second version"})
            assert store("1", {"text": "before 1, changed during the outage"})
            assert client.delete("/memories/101", headers=AUTH).json()["deleted"] is True
            del acknowledged["101.0"]
            assert client.get("/memories/105", headers=AUTH).json()["memory"]["payload"] == {
                "text": "during 105"
            }

            postgres.start()
            _wait_for_mode(client, "normal")
            for coord, payload in acknowledged.items():
                got = client.get(f"/memories/{coord}", headers=AUTH)
                assert got.status_code == 200 and got.json()["memory"]["payload"] == payload
            assert client.get("/memories/101", headers=AUTH).status_code == 404
            stats = client.get("/stats", headers=AUTH).json()
            # a write whose commit landed as PostgreSQL went away may have answered 503: such
            # writes exist without being acknowledged, never the other way round
            assert stats["total_memories"] >= len(acknowledged)
    finally:
        redis_client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT)
        journal_left = (
            redis_client.xlen(f"{prefix}:journal")
            if redis_client.exists(f"{prefix}:journal")
            else 0
        )
        keys = list(redis_client.scan_iter(f"{prefix}:*"))
        if keys:
            redis_client.delete(*keys)
        redis_client.close()

    assert journal_left == 0  # replayed and trimmed
    versions = asyncio.run(
        _rows(
            postgres.url,
            "SELECT coord, array_agg(version ORDER BY version) AS v, "
            "bool_or(deleted_at IS NOT NULL) AS deleted FROM memory_versions "
            "WHERE namespace = 'outage' GROUP BY coord",
        )
    )
    by_coord = {row["coord"]: list(row["v"]) for row in versions}
    assert by_coord["1.0"] == [1, 2, 3]  # two before, one replayed: none twice
    assert by_coord["100.0"] == [1, 2]
    # the replayed delete keeps 101's history for time travel, marked deleted
    assert {row["coord"] for row in versions if row["deleted"]} == {"101.0"}
    assert all(v == list(range(1, len(v) + 1)) for v in by_coord.values())
    load = {coord: v for coord, v in by_coord.items() if "," in coord}
    assert {coord for coord in acknowledged if "," in coord} <= set(load)
    assert all(v == [1] for v in load.values())  # each written once: never replayed twice


STARTUP = {"Authorization": f"Bearer {TOKEN}", "X-Soma-Namespace": "startup"}


def _journal_length(prefix: str) -> int:
    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT)
    try:
        return int(client.xlen(f"{prefix}:journal"))
    finally:
        client.close()


def stored_versions(url: str, namespace: str) -> dict[str, dict[int, dict]]:
    """Every version PostgreSQL holds for a namespace: coord -> {version: payload}."""

    async def fetch() -> list[asyncpg.Record]:
        connection = await asyncpg.connect(url)
        try:
            return await connection.fetch(
                "SELECT coord, version, payload::text AS payload FROM memory_versions "
                "WHERE namespace = $1",
                namespace,
            )
        finally:
            await connection.close()

    rows = asyncio.run(fetch())
    found: dict[str, dict[int, dict]] = {}
    for row in rows:
        found.setdefault(row["coord"], {})[row["version"]] = json.loads(row["payload"])
    return found


def _startup_settings(
    make_settings: Callable[..., Settings], postgres: PrivatePostgres, prefix: str
) -> Settings:
    return make_settings(
        postgres_url=postgres.url,
        redis_key_prefix=prefix,
        backend_check_seconds=0.2,
        connect_timeout_seconds=1.0,
        force_hash_embeddings=True,  # dozens of writes; meaning is not judged here
    )


def test_postgres_down_at_startup_then_back_replays_each_write_once_with_its_version(
    postgres: PrivatePostgres, own_redis_prefix: str, make_settings: Callable[..., Settings]
) -> None:
    """PostgreSQL is down when the service starts: it runs Redis-only, concurrent writes get
    gap-free versions, search answers from Redis, and when PostgreSQL is back every write is in
    it exactly once with the version it was acknowledged with, and degraded mode is over."""
    upgrade_to_head(postgres.url)
    postgres.stop()
    coords = ["1.0", "2.0", "3.0"]
    acknowledged: dict[str, dict[int, dict]] = {coord: {} for coord in coords}
    lock = threading.Lock()

    with TestClient(
        create_app(_startup_settings(make_settings, postgres, own_redis_prefix))
    ) as client:
        health = client.get("/health", headers=STARTUP).json()
        assert (health["mode"], health["degraded"]) == ("redis-only", True)
        assert health["backends"]["postgres"] == {"ok": False, "kind": "down", "detail": None}

        def write(worker: int) -> None:
            for n in range(8):
                coord = coords[(worker + n) % len(coords)]
                payload = {"text": f"writer {worker} note {n} at {coord}"}
                body = {"coord": coord, "payload": payload}
                response = client.post("/memories", json=body, headers=STARTUP)
                assert response.status_code == 200, response.text
                with lock:
                    version = response.json()["version"]
                    assert version not in acknowledged[coord], f"{coord} v{version} twice"
                    acknowledged[coord][version] = payload

        with ThreadPoolExecutor(4) as pool:
            for done in [pool.submit(write, w) for w in range(4)]:
                done.result()
        for coord in coords:  # Redis-only mode gives gap-free versions under concurrency
            assert sorted(acknowledged[coord]) == list(range(1, len(acknowledged[coord]) + 1))

        # written, deleted and written again while PostgreSQL is down: the versions go on after
        # the delete, as in PostgreSQL, which keeps the deleted history (time travel)
        gone = [{"text": "gone soon"}, {"text": "gone soon, changed"}]
        for payload in gone:
            body = {"coord": "9", "payload": payload}
            client.post("/memories", json=body, headers=STARTUP).raise_for_status()
        assert client.delete("/memories/9", headers=STARTUP).json()["deleted"] is True
        again = {"text": "back again"}
        reborn = client.post("/memories", json={"coord": "9", "payload": again}, headers=STARTUP)
        assert reborn.json()["version"] == 3
        acknowledged["9.0"] = {1: gone[0], 2: gone[1], 3: again}

        # search works in Redis-only mode: vectors in Milvus, memories read from Redis
        for coord in coords:
            version, payload = max(acknowledged[coord].items())
            search = client.post(
                "/memories/search", json={"query": payload["text"], "top_k": 1}, headers=STARTUP
            )
            assert search.status_code == 200, search.text
            hit = search.json()["memories"][0]
            assert (hit["coord"], hit["version"], hit["payload"]) == (coord, version, payload)
        hits = client.post(
            "/memories/search", json={"query": "gone soon, changed", "top_k": 10}, headers=STARTUP
        ).json()["memories"]
        assert [hit["payload"] for hit in hits if hit["coord"] == "9.0"] == [again]
        assert _journal_length(own_redis_prefix) == 8 * 4 + 4

        postgres.start()
        _wait_for_mode(client, "normal")
        # judged by the data: PostgreSQL holds exactly the acknowledged writes, once each
        assert stored_versions(postgres.url, "startup") == acknowledged
        assert _journal_length(own_redis_prefix) == 0
        health = client.get("/health", headers=STARTUP).json()
        assert (health["mode"], health["degraded"]) == ("normal", False)
        assert health["backends"]["postgres"]["ok"] is True
        for coord, versions in acknowledged.items():
            version, payload = max(versions.items())
            got = client.get(f"/memories/{coord}", headers=STARTUP).json()["memory"]
            assert (got["version"], got["payload"]) == (version, payload)
        # writes go to PostgreSQL again, after the replayed versions, and are not journaled
        after = client.post(
            "/memories", json={"coord": "1", "payload": {"text": "after"}}, headers=STARTUP
        ).json()
        assert after["version"] == len(acknowledged["1.0"]) + 1
        assert stored_versions(postgres.url, "startup")["1.0"][after["version"]] == {
            "text": "after"
        }
        assert _journal_length(own_redis_prefix) == 0

    # a later start in normal mode replays nothing again
    with TestClient(
        create_app(_startup_settings(make_settings, postgres, own_redis_prefix))
    ) as client:
        assert client.get("/health", headers=STARTUP).json()["mode"] == "normal"
        stored = stored_versions(postgres.url, "startup")
        assert stored["1.0"] == {**acknowledged["1.0"], after["version"]: {"text": "after"}}
        assert {coord: stored[coord] for coord in ("2.0", "3.0", "9.0")} == {
            coord: acknowledged[coord] for coord in ("2.0", "3.0", "9.0")
        }


def test_a_write_acknowledged_in_redis_only_mode_keeps_its_version_after_replay(
    postgres: PrivatePostgres,
    own_redis_prefix: str,
    make_settings: Callable[..., Settings],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """PostgreSQL already held the coordinate before it went down: the version the client was
    told in Redis-only mode is the version PostgreSQL stores for that write after replay. A
    coordinate the cache did not know is told a provisional number; replay keeps its order
    after PostgreSQL's versions and says that it renumbered it."""
    upgrade_to_head(postgres.url)
    settings = _startup_settings(make_settings, postgres, own_redis_prefix)
    with TestClient(create_app(settings)) as client:
        for n in (1, 2):
            body = {"coord": "7", "payload": {"text": f"stored before, {n}"}}
            assert client.post("/memories", json=body, headers=STARTUP).json()["version"] == n
        # a batch drops its entries from the cache: nothing in Redis knows coordinate 8
        items = [{"coord": "8", "payload": {"text": f"batched, {n}"}} for n in (1, 2)]
        batch = client.post("/memories/batch", json={"items": items}, headers=STARTUP)
        assert [item["version"] for item in batch.json()["results"]] == [1, 2]
    postgres.stop()

    with TestClient(create_app(settings)) as client:
        assert client.get("/health", headers=STARTUP).json()["mode"] == "redis-only"
        body = {"coord": "7", "payload": {"text": "written while postgres was down"}}
        told = client.post("/memories", json=body, headers=STARTUP).json()["version"]
        assert told == 3
        again = {"coord": "7", "payload": {"text": "and once more"}}
        assert client.post("/memories", json=again, headers=STARTUP).json()["version"] == 4
        history = client.get("/memories/7/versions", headers=STARTUP).json()["versions"]
        assert [(v["version"], v["payload"]) for v in history] == [
            (3, body["payload"]),
            (4, again["payload"]),
        ]
        unknown = {"coord": "8", "payload": {"text": "the cache never saw this one"}}
        assert client.post("/memories", json=unknown, headers=STARTUP).json()["version"] == 1
        postgres.start()
        _wait_for_mode(client, "normal")
        stored = stored_versions(postgres.url, "startup")
        assert stored["7.0"] == {
            1: {"text": "stored before, 1"},
            2: {"text": "stored before, 2"},
            3: body["payload"],
            4: again["payload"],
        }
        got = client.get("/memories/7", headers=STARTUP).json()["memory"]
        assert got["version"] == 4
        # the provisional write lands after PostgreSQL's versions, and the replay says so
        assert stored["8.0"] == {
            1: {"text": "batched, 1"},
            2: {"text": "batched, 2"},
            3: unknown["payload"],
        }
        assert "replay stored 1 journaled writes under other versions" in caplog.text
