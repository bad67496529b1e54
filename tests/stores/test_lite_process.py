"""milvus-lite in a child process (``SOMA_MILVUS_LITE_PROCESS``, the service's default): the
store works through it as through a thread, its data outlives it, Ctrl-C does not stop it, and
it does not outlive the process that started it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from milvus_lite.server_manager import server_manager_instance

from somamemory.embeddings import HashEmbedder
from somamemory.errors import StartupError
from somamemory.filters import parse_filter
from somamemory.models import Memory
from somamemory.stores.milvus import MilvusVectorStore
from somamemory.stores.milvus_lite_process import LiteChild

DIM = 32
embedder = HashEmbedder(DIM)


def _open(path: Path) -> MilvusVectorStore:
    return MilvusVectorStore.connect(
        str(path), collection="c", dim=DIM, token=None, timeout=10, lite_process=True
    )


def _child(path: Path) -> LiteChild:
    entry = server_manager_instance._servers[os.path.abspath(path)]
    assert isinstance(entry[0], LiteChild)
    return entry[0]


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, exited but not reaped, counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _wait_gone(pid: int, seconds: float = 60.0) -> bool:
    deadline = time.monotonic() + seconds
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not _alive(pid)


async def _find(store: MilvusVectorStore, text: str) -> list[str]:
    """The coordinate nearest to ``text``."""
    where = parse_filter("ns")
    assert where is not None
    vector = (await embedder.embed([text]))[0]
    return [found for found, _ in await store.search(vector, top_k=1, where=where)]


async def _put_and_find(store: MilvusVectorStore, coord: str, text: str) -> list[str]:
    now = datetime.now(UTC)
    memory = Memory("ns", coord, "semantic", {"text": text}, 0.0, 1, now, now)
    vector = (await embedder.embed([text]))[0]
    await store.upsert([(memory, vector)])
    await store.flush()
    return await _find(store, text)


async def test_the_store_works_through_a_child_and_its_data_outlives_it(tmp_path: Path) -> None:
    path = tmp_path / "v.db"
    store = _open(path)
    child = _child(path)
    assert child.process.pid != os.getpid() and _alive(child.process.pid)
    assert await _put_and_find(store, "1.0", "green tea with jasmine") == ["1.0"]
    await store.close()  # its last client: the child stops
    assert child.process.returncode == 0
    assert os.path.abspath(path) not in server_manager_instance._servers

    reopened = _open(path)
    assert _child(path).process.pid != child.process.pid
    assert await _put_and_find(reopened, "2.0", "black coffee") == ["2.0"]
    assert await _find(reopened, "green tea with jasmine") == ["1.0"]
    await reopened.close()


async def test_the_child_listens_only_on_a_socket_in_its_private_data_directory(
    tmp_path: Path,
) -> None:
    """No loopback port any local user could connect to: a Unix socket in the data directory,
    which only its owner can enter."""
    path = tmp_path / "v.db"
    store = _open(path)
    child = _child(path)
    assert child.address == f"unix:{path / 'lite.sock'}"
    assert stat.S_IMODE(path.stat().st_mode) == 0o700
    inodes = set()
    for fd in Path(f"/proc/{child.process.pid}/fd").iterdir():
        with contextlib.suppress(FileNotFoundError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    listening_tcp = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError), open(table) as rows:
            for row in list(rows)[1:]:
                fields = row.split()
                if fields[3] == "0A":  # LISTEN
                    listening_tcp.add(fields[9])
    assert inodes, "the child holds no socket at all"
    assert not inodes & listening_tcp, "milvus-lite's process listens on a TCP port"
    await store.close()


async def test_ctrl_c_leaves_the_child_to_the_service(tmp_path: Path) -> None:
    """A terminal's Ctrl-C reaches the whole process group; the service still needs lite while
    it flushes on its way out, so the child ignores it (and SIGTERM)."""
    path = tmp_path / "v.db"
    store = _open(path)
    child = _child(path)
    child.process.send_signal(signal.SIGINT)
    child.process.send_signal(signal.SIGTERM)
    assert await _put_and_find(store, "1.0", "a memory written after Ctrl-C") == ["1.0"]
    assert _alive(child.process.pid)
    await store.close()
    assert not _alive(child.process.pid)


def test_the_child_ends_when_the_process_that_started_it_dies(tmp_path: Path) -> None:
    path = tmp_path / "v.db"
    script = textwrap.dedent(
        f"""
        import asyncio, os, sys, time
        sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
        from tests.stores.test_lite_process import _child, _open, _put_and_find
        store = _open(__import__("pathlib").Path({str(path)!r}))
        assert asyncio.run(_put_and_find(store, "1.0", "written before the crash")) == ["1.0"]
        print(_child(__import__("pathlib").Path({str(path)!r})).process.pid, flush=True)
        time.sleep(600)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child_pid = int(parent.stdout.readline())
    parent.stdout.close()
    assert _alive(child_pid)
    parent.kill()
    parent.wait()
    assert _wait_gone(child_pid), "milvus-lite's process outlived the service that started it"

    # the data directory is free again, and what was written before the crash is there
    store = _open(path)
    try:
        assert asyncio.run(_find(store, "written before the crash")) == ["1.0"]
    finally:
        asyncio.run(store.close())


async def test_a_child_that_dies_is_started_again_and_the_store_reconnects(tmp_path: Path) -> None:
    """Killed (say, by the kernel out of memory) while the service uses it, the child comes back
    on the same socket, the store's client reconnects, and nothing acknowledged is lost."""
    path = tmp_path / "v.db"
    store = _open(path)
    child = _child(path)
    assert await _put_and_find(store, "1.0", "written before the kill") == ["1.0"]
    first = child.process.pid
    os.kill(first, signal.SIGKILL)
    assert _wait_gone(first)
    deadline = time.monotonic() + 120
    while child.process.pid == first and time.monotonic() < deadline:
        time.sleep(0.1)
    assert child.process.pid != first, "the child was not started again"

    assert await _put_and_find(store, "2.0", "written after the restart") == ["2.0"]
    assert await _find(store, "written before the kill") == ["1.0"]
    await store.close()
    assert not _alive(child.process.pid)


async def test_the_child_multiplies_matrices_on_one_thread_unless_told_otherwise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A search of a large unindexed segment is one matrix product: on every core, it starved
    the index build that would make it cheap. An operator's own setting is kept."""
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    store = _open(tmp_path / "a.db")
    assert _environment(_child(tmp_path / "a.db").process.pid)["OPENBLAS_NUM_THREADS"] == "1"
    await store.close()

    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
    store = _open(tmp_path / "b.db")
    assert _environment(_child(tmp_path / "b.db").process.pid)["OPENBLAS_NUM_THREADS"] == "2"
    await store.close()


def _environment(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/environ", "rb") as environ:
        pairs = [item.decode().split("=", 1) for item in environ.read().split(b"\0") if item]
    return {name: value for name, value in pairs}


async def test_an_open_that_fails_leaves_no_child_behind(tmp_path: Path) -> None:
    """A store refused at startup (another dimension than the collection's) stops the child it
    started, rather than leaving it to the end of the process."""
    path = tmp_path / "v.db"
    await _open(path).close()
    with pytest.raises(StartupError, match=f"holds {DIM}-dim vectors"):
        MilvusVectorStore.connect(
            str(path), collection="c", dim=DIM * 2, token=None, timeout=10, lite_process=True
        )
    assert os.path.abspath(path) not in server_manager_instance._servers


@pytest.mark.parametrize("lite_process", [True, False], ids=["child", "thread"])
async def test_lite_lets_its_client_keep_an_idle_connection_alive(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], lite_process: bool
) -> None:
    """pymilvus pings every 10 s even with no call in flight. gRPC's server defaults count such
    pings as abuse and close the connection ("too_many_pings") after about 30 s of idleness,
    failing any call that races the close and logging an error in the service. A client
    pinging far more often (every 200 ms) must keep its connection open and quiet, whether lite
    serves from a child process or from a thread of this one."""
    import grpc
    from pymilvus.grpc_gen import milvus_pb2, milvus_pb2_grpc

    path = tmp_path / "v.db"
    store = MilvusVectorStore.connect(
        str(path), collection="c", dim=DIM, token=None, timeout=10, lite_process=lite_process
    )
    entry = server_manager_instance._servers[os.path.abspath(path)]
    address = entry[0].address if lite_process else f"127.0.0.1:{entry[2]}"
    options = [
        ("grpc.keepalive_time_ms", 200),
        ("grpc.keepalive_timeout_ms", 5000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
    ]
    channel = grpc.insecure_channel(address, options=options)
    stub = milvus_pb2_grpc.MilvusServiceStub(channel)
    request = milvus_pb2.HasCollectionRequest(collection_name="c")
    assert stub.HasCollection(request, timeout=10).value
    await asyncio.sleep(3)  # ~15 pings with no call in flight
    assert stub.HasCollection(request, timeout=10).value
    channel.close()
    await store.close()
    assert "too_many_pings" not in capfd.readouterr().err
