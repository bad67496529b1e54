"""The README's first command: ``somamemory serve`` on the embedded default, as a real process."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ..serve import Serve, postmasters


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "data"
    yield path
    for proc in postmasters(path.resolve() / "postgres"):  # never leak a server
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
    assert not postmasters(data_dir.resolve() / "postgres")  # a clean stop stops PostgreSQL
    # a clean stop ends as the signal asked (uvicorn re-raises it), never as a failure
    assert first.process.returncode in (0, -signal.SIGTERM), first.output()

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
    left = postmasters(pgdata)
    assert len(left) == 1  # the killed service left its PostgreSQL running

    second = Serve(data_dir)
    try:
        second.wait_ready()
        assert [p.pid for p in postmasters(pgdata)] == [left[0].pid]
        got = httpx.get(f"{second.url}/memories/9", headers=second.headers())
        assert got.json()["memory"]["payload"] == {"k": 1}
    finally:
        second.stop()
