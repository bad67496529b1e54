"""The README's first command: ``somamemory serve`` on the embedded default, as a real process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from ..conftest import free_port

_BACKEND_VARS = (
    "POSTGRES_URL",
    "REDIS_HOST",
    "REDIS_PORT",
    "SOMA_MILVUS_URI",
    "SOMA_MILVUS_HOST",
    "SOMA_MILVUS_PORT",
    "SOMA_API_TOKEN",
    "SOMA_DATA_DIR",
)


class Serve:
    """One ``somamemory serve`` process on its own port and data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if k not in _BACKEND_VARS}
        env["SOMA_FORCE_HASH_EMBEDDINGS"] = "1"
        self.log = (data_dir.parent / f"serve-{self.port}.log").open("w")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "somamemory.cli",
                "serve",
                "--port",
                str(self.port),
                "--data-dir",
                str(data_dir),
            ],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.output()
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"not ready in {timeout}s:\n{self.output()}")

    def headers(self) -> dict[str, str]:
        token = (self.data_dir / "api_token").read_text().strip()
        return {"Authorization": f"Bearer {token}"}

    def output(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return Path(self.log.name).read_text()

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=30)
        self.log.close()


def _postmasters(pgdata: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if any(part.endswith("postgres") for part in cmdline[:1]) and str(pgdata) in cmdline:
            found.append(proc)
    return found


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "data"
    yield path
    for proc in _postmasters(path.resolve() / "postgres"):  # never leak a server
        proc.terminate()


def test_memories_survive_a_restart_of_the_embedded_default(data_dir: Path) -> None:
    first = Serve(data_dir)
    try:
        first.wait_ready()
        assert "Authorization: Bearer" in first.output()  # the generated token is printed
        stored = httpx.post(
            f"{first.url}/memories",
            json={"coord": "1,2,3", "payload": {"text": "remember me"}},
            headers=first.headers(),
        )
        assert stored.status_code == 200, stored.text
        health = httpx.get(f"{first.url}/health", headers=first.headers()).json()
        assert health["backends"]["postgres"]["kind"] == "embedded"
        assert health["backends"]["milvus"]["kind"] == "lite"
        assert health["backends"]["redis"]["kind"] == "in-process"
    finally:
        first.stop()
    assert "in-process cache" in first.output()
    assert not _postmasters(data_dir.resolve() / "postgres")  # a clean stop stops PostgreSQL

    second = Serve(data_dir)
    try:
        second.wait_ready()
        got = httpx.get(f"{second.url}/memories/1,2,3", headers=second.headers())
        assert got.status_code == 200
        assert got.json()["memory"]["payload"] == {"text": "remember me"}
    finally:
        second.stop()


def test_a_server_left_by_a_killed_process_is_reused_not_duplicated(data_dir: Path) -> None:
    first = Serve(data_dir)
    first.wait_ready()
    httpx.post(
        f"{first.url}/memories", json={"coord": "9", "payload": {"k": 1}}, headers=first.headers()
    )
    first.stop(signal.SIGKILL)
    pgdata = data_dir.resolve() / "postgres"
    left = _postmasters(pgdata)
    assert len(left) == 1  # the killed service left its PostgreSQL running

    second = Serve(data_dir)
    try:
        second.wait_ready()
        assert [p.pid for p in _postmasters(pgdata)] == [left[0].pid]
        got = httpx.get(f"{second.url}/memories/9", headers=second.headers())
        assert got.json()["memory"]["payload"] == {"k": 1}
    finally:
        second.stop()
