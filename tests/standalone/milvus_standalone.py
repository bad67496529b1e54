"""A real Milvus standalone (the ``milvus`` 2.3.5 package's ``default_server``) in a child process.

``milvus`` is installed in a venv of its own (see scripts/milvus-standalone-tests.sh): this file
runs there as a script, starts ``default_server`` and stops it with ``default_server.stop()``
when its stdin closes or it gets SIGTERM (a SIGTERM to the launcher alone would orphan the
server child). The tests drive it through ``MilvusStandalone``. Milvus binds 0.0.0.0, so it is
only started inside a network namespace that has nothing but loopback.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

READY = "READY"
ENABLED = os.environ.get("SOMA_TEST_MILVUS_STANDALONE") == "1"
SKIP_REASON = (
    "opt-in tier: set SOMA_TEST_MILVUS_STANDALONE=1 (run scripts/milvus-standalone-tests.sh) "
    "to test against a real Milvus standalone"
)


def only_loopback() -> bool:
    """True inside a network namespace with no interface but ``lo`` (``unshare -n``)."""
    return [name for _, name in socket.if_nameindex()] == ["lo"]


class MilvusStandalone:
    """Start and stop the launcher script below under ``python`` (the venv with ``milvus``)."""

    def __init__(self, python: str, base_dir: Path, config: dict[str, str] | None = None) -> None:
        self.python = python
        self.base_dir = base_dir
        self.config = config or {}  # milvus.yaml settings by dotted name, e.g. "proxy.port"
        self.log_path = base_dir / "launcher.log"
        self.uri = ""
        self.process: subprocess.Popen[str] | None = None
        self._log: IO[str] | None = None

    def start(self, timeout: float = 120) -> MilvusStandalone:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [self.python, __file__, str(self.base_dir / "milvus"), json.dumps(self.config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([self.process.stdout], [], [], 0.5)
            if ready:
                line = self.process.stdout.readline().split()
                if line[:1] == [READY]:
                    self.uri = f"http://127.0.0.1:{line[1]}"
                    return self
        self.stop()
        raise RuntimeError(
            f"Milvus standalone did not start within {timeout:.0f} s: see {self.log_path} "
            f"and {self.base_dir / 'milvus' / 'logs'}"
        )

    def stop(self, timeout: float = 60) -> None:
        """Close the launcher's stdin: it runs ``default_server.stop()`` and exits."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            assert process.stdin is not None
            process.stdin.close()
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process is not None and process.stdout is not None:
            process.stdout.close()
        if self._log is not None:
            self._log.close()
            self._log = None


def _serve(base_dir: str, config: dict[str, str]) -> None:
    from milvus import default_server  # only in the venv that has milvus==2.3.5

    def _terminate(signum: int, frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _terminate)
    default_server.set_base_dir(base_dir)
    for name, value in config.items():
        default_server.config.set(name, value)
    try:
        started = time.monotonic()
        default_server.start()
        print(f"milvus standalone up in {time.monotonic() - started:.1f} s", file=sys.stderr)
        print(READY, default_server.listen_port, flush=True)
        sys.stdin.read()  # until the tests close it
    finally:
        default_server.stop()
        print("milvus standalone stopped", file=sys.stderr)


if __name__ == "__main__":
    _serve(sys.argv[1], json.loads(sys.argv[2]) if len(sys.argv) > 2 else {})
