"""PostgreSQL stops under load and comes back: the service goes Redis-only (journaling writes
in Redis), then replays the journal into PostgreSQL, in order, with no write lost or applied
twice. The PostgreSQL here is a private throwaway server, never the machine's shared one.
"""

from __future__ import annotations

import asyncio
import contextlib
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
            "SELECT coord, array_agg(version ORDER BY version) AS v FROM memory_versions "
            "WHERE namespace = 'outage' GROUP BY coord",
        )
    )
    by_coord = {row["coord"]: list(row["v"]) for row in versions}
    assert by_coord["1.0"] == [1, 2, 3]  # two before, one replayed: none twice
    assert by_coord["100.0"] == [1, 2]
    assert "101.0" not in by_coord
    assert all(v == list(range(1, len(v) + 1)) for v in by_coord.values())
