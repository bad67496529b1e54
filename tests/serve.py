"""``somamemory serve`` as a real process, on its own port and data directory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

from .conftest import free_port

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

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        extra_env = env
        env = {k: v for k, v in os.environ.items() if k not in _BACKEND_VARS}
        env.update(extra_env or {})
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


def postmasters(pgdata: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if any(part.endswith("postgres") for part in cmdline[:1]) and str(pgdata) in cmdline:
            found.append(proc)
    return found
