"""A startup the service refuses ends the process with the reason, written for the operator,
instead of a traceback through the web framework's frames."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..conftest import free_port
from .test_workers import _environment, _serve


@pytest.mark.timeout(300)
def test_a_refused_startup_says_why_in_one_line(tmp_path: Path, database_url: str) -> None:
    closed = f"http://127.0.0.1:{free_port()}"  # no Milvus there
    env = _environment(
        POSTGRES_URL=database_url,
        SOMA_MILVUS_URI=closed,
        SOMA_CONNECT_TIMEOUT_SECONDS="1",
        SOMA_FORCE_HASH_EMBEDDINGS="1",
    )
    ran = _serve(tmp_path / "data", env)
    assert ran.returncode != 0, ran.stderr
    (reason,) = [line for line in ran.stderr.splitlines() if "somamemory: " in line]
    assert f"Milvus at {closed} is unreachable" in reason
    assert "Traceback" not in ran.stderr and 'File "' not in ran.stderr
