"""Redis going away while running: reads fall through to PostgreSQL, writes take in-process
locks, nothing fails, and Redis is used again when it returns. The Redis here is a private
throwaway server, never the machine's shared one."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator

import pytest
import redis
from fastapi.testclient import TestClient

from somamemory.app import create_app
from somamemory.settings import Settings

from ..conftest import TOKEN, free_port

AUTH = {"Authorization": f"Bearer {TOKEN}", "X-Soma-Namespace": "redis-outage"}


class PrivateRedis:
    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        executable = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.process = subprocess.Popen(
            [
                executable,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "private redis did not start"
                time.sleep(0.05)
        client.close()

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    server.start()
    yield server
    server.stop()


def test_writes_and_reads_go_on_while_redis_is_down(
    private_redis: PrivateRedis, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(redis_port=private_redis.port, connect_timeout_seconds=0.5)
    with TestClient(create_app(settings)) as client:
        body = {"coord": "1", "payload": {"text": "before"}}
        assert client.post("/memories", json=body, headers=AUTH).status_code == 200

        private_redis.stop()
        for i in range(2, 6):
            body = {"coord": str(i), "payload": {"text": f"while redis is down {i}"}}
            response = client.post("/memories", json=body, headers=AUTH)
            assert response.status_code == 200, response.text
        upsert = client.post(
            "/memories", json={"coord": "1", "payload": {"text": "after"}}, headers=AUTH
        )
        assert upsert.json()["version"] == 2
        assert client.get("/memories/1", headers=AUTH).json()["memory"]["payload"] == {
            "text": "after"
        }
        health = client.get("/health", headers=AUTH).json()
        assert health["backends"]["redis"]["ok"] is False
        assert client.get("/stats", headers=AUTH).json()["total_memories"] == 5

        private_redis.start()
        assert (
            client.post(
                "/memories", json={"coord": "9", "payload": {"text": "back"}}, headers=AUTH
            ).status_code
            == 200
        )
        assert client.get("/health", headers=AUTH).json()["backends"]["redis"]["ok"] is True
