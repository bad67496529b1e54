"""milvus-lite's Arrow buffers go to a pool that returns freed memory to the system: from the
server's start (Arrow's C++ default) and whenever a milvus-lite store is opened (pyarrow's)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

START_AND_REPORT = """
from somamemory.stores.milvus_lite_memory import prefer_returning_pool
prefer_returning_pool()
import pyarrow
print(pyarrow.default_memory_pool().backend_name)
"""
OPEN_AND_REPORT = """
import sys
import pyarrow
from somamemory.stores.milvus import open_client
opened = open_client(sys.argv[1], token=None, timeout=5)
print(pyarrow.default_memory_pool().backend_name)
opened.client.close()
"""


def _pool_after(script: str, tmp_path: Path, chosen: str | None) -> str:
    """Arrow's default pool in a fresh process that ran ``script``."""
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    if chosen:
        env["ARROW_DEFAULT_MEMORY_POOL"] = chosen
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "v.db")],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("script", [START_AND_REPORT, OPEN_AND_REPORT], ids=["start", "open"])
def test_arrow_buffers_go_to_jemalloc(script: str, tmp_path: Path) -> None:
    import pyarrow

    if "jemalloc" not in pyarrow.supported_memory_backends():
        pytest.skip("this pyarrow has no jemalloc pool")
    assert _pool_after(script, tmp_path, None) == "jemalloc"


@pytest.mark.parametrize("script", [START_AND_REPORT, OPEN_AND_REPORT], ids=["start", "open"])
def test_an_operator_choice_of_pool_is_kept(script: str, tmp_path: Path) -> None:
    assert _pool_after(script, tmp_path, "system") == "system"
