"""The compose core profile, run for real: `migrate` and `api` from the locally built image.

Backend images cannot be pulled here, so compose.local.yml stands in for them (this machine's
PostgreSQL and Redis, a milvus-lite server) and puts every container on the host network,
on free ports on 127.0.0.1. Each run is its own compose project, database and Redis prefix.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
import redis

from somamemory.embedded import with_database
from tests.conftest import ADMIN_URL, REDIS_HOST, REDIS_PORT, drop_database, free_port
from tests.packaging import engine
from tests.packaging.repo import ROOT

pytestmark = pytest.mark.timeout(engine.BUILD_TIMEOUT + 300)

TOKEN = "compose-test-token"
FILES = ("-f", "docker-compose.yml", "-f", "compose.local.yml", "--profile", "core")


@dataclass
class Project:
    """One compose project: its name, the variables it runs with, where its API listens."""

    name: str
    env: dict[str, str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.env['SOMA_PORT']}"

    def compose(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["docker-compose", "-p", self.name, *FILES, *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def container(self, service: str) -> engine.Container:
        return engine.Container(f"{self.name}_{service}_1")

    def logs(self) -> str:
        result = self.compose("logs", "--no-color", "--tail=40", timeout=60)
        return result.stdout[-6000:]


@pytest.fixture
def project(service_image: str) -> Iterator[Project]:
    suffix = uuid.uuid4().hex[:10]
    database = with_database(ADMIN_URL, f"soma_compose_{suffix}")  # the stand-in creates it
    prefix = f"compose{suffix}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOMA_", "POSTGRES_"))}
    env |= {
        "SOMA_IMAGE": service_image,
        "SOMA_API_TOKEN": TOKEN,
        "SOMA_PORT": str(free_port()),
        "SOMA_MILVUS_PORT": str(free_port()),
        "POSTGRES_URL": database,
        "REDIS_PORT": str(REDIS_PORT),
        "SOMA_REDIS_KEY_PREFIX": prefix,
    }
    project = Project(f"{engine.NAME_PREFIX.replace('-', '')}{suffix}", env)
    try:
        yield project
    finally:
        down = project.compose("down", "--volumes", "--remove-orphans", "--timeout", "20")
        drop_database(database)
        with redis.Redis(host=REDIS_HOST, port=REDIS_PORT) as client:
            for key in client.scan_iter(f"{prefix}*"):
                client.delete(key)
    assert down.returncode == 0, down.stderr
    left = engine.docker(
        "ps", "-aq", "--filter", f"label=com.docker.compose.project={project.name}"
    )
    assert not left.stdout.strip(), "compose down left containers behind"


async def count_memories(url: str) -> int:
    connection = await asyncpg.connect(url)
    try:
        return int(await connection.fetchval("SELECT count(*) FROM memories"))
    finally:
        await connection.close()


def test_core_profile_migrates_then_serves(project: Project) -> None:
    up = project.compose("up", "-d", "--no-build", "migrate", "api")
    assert up.returncode == 0, up.stderr + project.logs()

    migrate = project.container("migrate").inspect()["State"]
    assert (migrate["Status"], migrate["ExitCode"]) == ("exited", 0)
    api = project.container("api")
    ready = engine.wait_for(api, f"{project.url}/readyz", timeout=180)
    assert ready.json() == {"status": "ok"}

    auth = {"Authorization": f"Bearer {TOKEN}"}
    health = httpx.get(f"{project.url}/health", headers=auth, timeout=30).json()
    kinds = {name: (b["ok"], b["kind"]) for name, b in health["backends"].items()}
    assert kinds == {
        "postgres": (True, "external"),
        "redis": (True, "external"),
        "milvus": (True, "server"),  # the milvus service, over the network
    }

    memory: dict[str, Any] = {"coord": "3,1,4", "payload": {"text": "composed for real"}}
    stored = httpx.post(f"{project.url}/memories", json=memory, headers=auth, timeout=60)
    assert stored.status_code == 200 and stored.json()["indexed"], stored.text
    read = httpx.get(f"{project.url}/memories/3,1,4", headers=auth, timeout=30)
    assert read.status_code == 200 and read.json()["memory"]["payload"] == memory["payload"]
    found = httpx.post(
        f"{project.url}/memories/search",
        json={"query": "composed for real", "top_k": 1},
        headers=auth,
        timeout=60,
    )
    assert [hit["coord"] for hit in found.json()["memories"]] == ["3.0,1.0,4.0"]
    assert asyncio.run(count_memories(project.env["POSTGRES_URL"])) == 1

    def api_health() -> str | None:
        status = str(api.inspect()["State"]["Health"]["Status"])
        return status if status != "starting" else None

    assert engine.wait_until(api_health, "the api service's healthcheck", 90) == "healthy"
