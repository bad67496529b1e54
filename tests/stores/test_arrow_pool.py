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

FREE_AND_REPORT = """
from somamemory.stores.milvus_lite_memory import prefer_returning_pool
prefer_returning_pool()
import numpy
import pyarrow

def anonymous_kib():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("RssAnon"))

before = anonymous_kib()
buffers = []
for _ in range(40_000):  # 80 MiB in small buffers, as Arrow tables of a few rows use
    buffer = pyarrow.allocate_buffer(2048)
    numpy.frombuffer(buffer, dtype=numpy.uint8)[:] = 1
    buffers.append(buffer)
full = anonymous_kib()
del buffers
print(full - before, full - anonymous_kib())
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


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
def test_freed_arrow_memory_leaves_the_process_at_once(tmp_path: Path) -> None:
    import pyarrow

    if "jemalloc" not in pyarrow.supported_memory_backends():
        pytest.skip("this pyarrow has no jemalloc pool")
    env = {k: v for k, v in os.environ.items() if not k.endswith("MALLOC_CONF")}
    env.pop("ARROW_DEFAULT_MEMORY_POOL", None)
    done = subprocess.run(
        [sys.executable, "-c", FREE_AND_REPORT], env=env, capture_output=True, text=True, check=True
    )
    grown, returned = (int(n) for n in done.stdout.split())
    assert grown > 60_000, done.stdout  # KiB
    assert returned > 0.75 * grown, done.stdout  # 90% here; Arrow's default decay: 3%


def test_an_operator_jemalloc_configuration_is_kept() -> None:
    script = (
        "import os\n"
        "from somamemory.stores.milvus_lite_memory import prefer_returning_pool\n"
        "prefer_returning_pool()\n"
        "print(os.environ['JE_ARROW_MALLOC_CONF'])"
    )
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    env["JE_ARROW_MALLOC_CONF"] = "dirty_decay_ms:5000"
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "dirty_decay_ms:5000"
