"""milvus-lite in a process of its own, reached over the same gRPC as a Milvus server.

pymilvus serves a local ``.db`` path by starting lite's gRPC server in a thread of the calling
process. In ``somamemory serve`` that put lite's searches, flushes, merges and index builds
under the same GIL as the event loop: under 200 writes a second a search waited its turn for
the GIL at every hand-off (the client's thread, lite's server thread, the search executor's
numpy and faiss calls), and took 26 ms at p50 over HTTP at 20k memories where it takes 7 ms
alone. With lite in a child process the same search took 16 ms (bench/search_quality.py).

``serve_from_child`` makes pymilvus start such a child instead of the thread, once per
data directory, as lite's own server manager would have started the thread: everything above
it (the store, its client calls, its flushes) is unchanged. The child installs the store's
mends of milvus-lite in itself, ignores SIGINT and SIGTERM (the service, which flushes on its
way out, decides when lite stops), and exits when its standard input closes: when the last
client of its data directory closes (``release_own_process``), or when the service dies.

It listens on a Unix socket inside its data directory (owner only), not on a loopback port
that any local user could connect to; on a TCP loopback port only when the socket's path is
too long for the system.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from typing import IO, Any

from .milvus_lite_patch import patch

log = logging.getLogger(__name__)

READY = "milvus-lite listening on"
SOCKET_NAME = "lite.sock"
_SOCKET_PATH_MAX = 100  # sun_path holds 108 bytes on Linux, 104 on macOS
_wanted: dict[str, bool] = {}  # data directory -> fast search, for those a child serves
_users: dict[str, int] = {}  # data directory -> clients opened on its child
_users_lock = threading.Lock()
START_SECONDS = 120.0  # a child on a loaded 2-core machine imports for several seconds
LOCK_WAIT_SECONDS = 15.0  # a previous child of the same data directory may still be closing
RESTARTS_PER_MINUTE = 5  # beyond, a child that keeps dying stays down (search answers 503)


class LiteChild:
    """A running child, restarted if it dies while in use; ``stop`` ends it (the shape lite's
    server manager stops a server by)."""

    def __init__(self, path: str, *, fast_search: bool, timeout: float = START_SECONDS) -> None:
        self.path = path
        self.fast_search = fast_search
        self.process, self.address = _spawn(path, fast_search, timeout)
        self._stopping = threading.Event()
        self._watch = threading.Thread(target=self._restart_when_dead, daemon=True)
        self._watch.start()

    def _restart_when_dead(self) -> None:
        """A child that dies (killed, out of memory) while clients use it is started again on
        the same socket, which their gRPC channels reconnect to."""
        restarts: list[float] = []
        while True:
            code = self.process.wait()
            if self._stopping.is_set():
                return
            if self.process.stdin is not None:
                with contextlib.suppress(OSError):
                    self.process.stdin.close()
            now = time.monotonic()
            restarts = [at for at in restarts if now - at < 60] + [now]
            if len(restarts) > RESTARTS_PER_MINUTE or not self.address.startswith("unix:"):
                log.error("milvus-lite's process exited (%s) and stays down", code)
                return
            log.error("milvus-lite's process exited (%s): starting it again", code)
            try:
                process, address = _spawn(self.path, self.fast_search, START_SECONDS)
            except (OSError, RuntimeError):
                log.exception("milvus-lite's process could not start again")
                time.sleep(1.0)
                continue
            if address != self.address:  # not where the clients reconnect
                log.error("milvus-lite's process came back on %s, not %s", address, self.address)
            self.process = process
            if self._stopping.is_set():  # stopped meanwhile: this one too
                self._end(process, 2.0)
                return

    def stop(self, grace: float = 2.0) -> None:
        """Close its standard input (it stops its server and closes the data), then wait."""
        self._stopping.set()
        self._end(self.process, grace)
        self._watch.join(timeout=5)

    @staticmethod
    def _end(process: subprocess.Popen[bytes], grace: float) -> None:
        stdin: IO[bytes] | None = process.stdin
        if stdin is not None and not stdin.closed:
            with contextlib.suppress(OSError):
                stdin.close()
        try:
            process.wait(timeout=grace + 30)
        except subprocess.TimeoutExpired:
            log.warning("milvus-lite's process did not stop in time: killed")
            process.kill()
            process.wait()


def _spawn(path: str, fast_search: bool, timeout: float) -> tuple[subprocess.Popen[bytes], str]:
    """Start a child serving ``path``; wait until it listens; it and its address."""
    command = [sys.executable, "-m", __name__, path, "--fast-search", "1" if fast_search else "0"]
    # one BLAS thread per search: a search of a large unindexed segment (one matrix product) no
    # longer takes every core from that segment's index build (see the README, run 7)
    env = {**os.environ, "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS", "1")}
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    line = b""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(left):
                process.kill()
                process.wait()
                process.stdout.close()
                raise RuntimeError(f"milvus-lite's process did not start within {timeout:.0f} s")
            chunk = os.read(process.stdout.fileno(), 256)
            if not chunk:
                code = process.wait()
                process.stdout.close()
                raise RuntimeError(f"milvus-lite's process exited ({code}) before it listened")
            line += chunk
    process.stdout.close()  # the child writes nothing more to it (see main)
    text = line.decode().strip()
    if not text.startswith(READY):
        process.kill()
        process.wait()
        raise RuntimeError(f"milvus-lite's process said {text!r}")
    return process, text.removeprefix(READY).strip()


def serve_from_child(path: str, *, fast_search: bool) -> bool:
    """Have pymilvus serve ``path`` from a child process when it opens it next; False when that
    cannot be (an unchecked milvus-lite): lite then runs in this process."""
    try:
        from milvus_lite.server_manager import ServerManager
    except ImportError:
        return False

    def replacement(original: Any) -> Any:
        def start_and_get_uri(self: Any, path: str, args: dict[str, Any] | None = None) -> Any:
            absolute = os.path.abspath(path)
            with self._lock:
                served = self._servers.get(absolute)
                in_thread = served is None and absolute not in _wanted
            if in_thread:
                return original(self, path, args)  # as it was asked (it takes the lock)
            with self._lock:
                served = self._servers.get(absolute)
                if served is None:
                    try:
                        child = LiteChild(absolute, fast_search=_wanted.get(absolute, True))
                    except (OSError, RuntimeError):
                        log.exception("could not start milvus-lite's process for %s", absolute)
                        return None
                    # (server, db, port) as lite keeps them: release_server stops the
                    # child, and its db.close() on None is an error it ignores
                    served = self._servers[absolute] = (child, None, 0)
                if not isinstance(served[0], LiteChild):
                    return f"http://127.0.0.1:{served[2]}"  # a thread serves it already
                with _users_lock:
                    _users[absolute] = _users.get(absolute, 0) + 1
                return served[0].address

        return start_and_get_uri

    installed = patch(
        ServerManager,
        "start_and_get_uri",
        replacement,
        otherwise="serving milvus-lite from a thread of this process",
    )
    if installed is None:
        return False
    with _users_lock:
        _wanted[os.path.abspath(path)] = fast_search
    return True


def serve_from_thread(path: str) -> None:
    """Have pymilvus serve ``path`` from a thread of this process when it opens it next."""
    with _users_lock:
        _wanted.pop(os.path.abspath(path), None)


def release_own_process(path: str) -> None:
    """A client of ``path`` closed: the last one stops its child (no-op without one)."""
    absolute = os.path.abspath(path)
    with _users_lock:
        left = _users.get(absolute, 0) - 1
        if left < 0:
            return
        if left > 0:
            _users[absolute] = left
            return
        del _users[absolute]
    from milvus_lite.server_manager import server_manager_instance

    server_manager_instance.release_server(absolute)


# ── the child ────────────────────────────────────────────────────────────────────────────


def _open_server(path: str) -> tuple[Any, Any, str]:
    """Lite's gRPC server, once the data directory's lock is free, and its address."""
    from milvus_lite.adapter.grpc import server as lite_server
    from milvus_lite.db import MilvusLite
    from milvus_lite.exceptions import DataDirLockedError

    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while True:
        try:
            db = MilvusLite(path)
            break
        except DataDirLockedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    # lite's own builder, mended to welcome the service's keepalive pings (milvus_lite_pings)
    server = lite_server._build_server(db, lite_server.DEFAULT_MAX_WORKERS)
    socket = os.path.join(path, SOCKET_NAME)
    if len(socket.encode()) <= _SOCKET_PATH_MAX:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(socket)  # left by a child that was killed
        server.add_insecure_port(f"unix:{socket}")
        address = f"unix:{socket}"
    else:
        address = f"http://127.0.0.1:{server.add_insecure_port('127.0.0.1:0')}"
    server.start()
    return server, db, address


def _unimplemented_calls(record: logging.LogRecord) -> bool:
    """Keep gRPC's log of a failed call, unless lite just lacks the method: pymilvus asks for
    a timestamp when it creates an index (AllocTimestamp), and goes on without one."""
    error = record.exc_info[1] if record.exc_info else None
    return not isinstance(error, NotImplementedError)


def main(argv: list[str] | None = None) -> int:
    """Serve one data directory until standard input closes."""
    parser = argparse.ArgumentParser(prog="python -m somamemory.stores.milvus_lite_process")
    parser.add_argument("path")
    parser.add_argument("--fast-search", choices=("0", "1"), default="1")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, format="milvus-lite: %(levelname)s %(message)s")
    logging.getLogger("grpc._server").addFilter(_unimplemented_calls)

    from .milvus_lite_memory import prefer_returning_pool

    prefer_returning_pool()  # before pyarrow is imported
    from .milvus import install_lite_mends

    install_lite_mends(fast_search=args.fast_search == "1")
    server, db, address = _open_server(args.path)
    print(f"{READY} {address}", flush=True)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # the service stopped reading stdout
    sys.stdin.buffer.read()  # until the service closes it, or dies
    server.stop(grace=2).wait()
    db.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
