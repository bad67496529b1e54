"""What the benchmarks share: a ``somamemory serve`` process, throwaway databases, percentiles."""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx

TOKEN = "bench-token"
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(data_dir: Path, env: dict[str, str], *, hash_embeddings: bool = True) -> Iterator[str]:
    """``somamemory serve`` (hash embeddings unless ``hash_embeddings`` is False: then the
    default local model; the bench token, then ``env``); yields its URL."""
    port = free_port()
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("SOMA_", "POSTGRES", "REDIS"))
    }
    clean.update(
        {
            "SOMA_API_TOKEN": TOKEN,
            "SOMA_FORCE_HASH_EMBEDDINGS": "1" if hash_embeddings else "0",
            "SOMA_LOG_LEVEL": "WARNING",
        }
    )
    clean.update(env)
    command = [sys.executable, "-m", "somamemory.cli", "serve", "--port", str(port)]
    process = subprocess.Popen([*command, "--data-dir", str(data_dir)], env=clean)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit("the service did not become ready")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait()


async def migrated_database(admin_url: str = ADMIN_URL) -> str:
    """A new database on the server of ``admin_url``, migrated to head; returns its URL."""
    name = f"soma_bench_{uuid.uuid4().hex[:8]}"
    connection = await asyncpg.connect(admin_url)
    await connection.execute(f'CREATE DATABASE "{name}"')
    await connection.close()
    url = with_database(admin_url, name)
    subprocess.run(
        [sys.executable, "-m", "somamemory.cli", "migrate"],
        check=True,
        capture_output=True,
        env={**os.environ, "POSTGRES_URL": url},
    )
    return url


def with_database(url: str, name: str) -> str:
    """``url`` naming database ``name`` instead (its query, e.g. a Unix socket host, kept)."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


async def drop_database(url: str, admin_url: str = ADMIN_URL) -> None:
    connection = await asyncpg.connect(admin_url)
    name = urlsplit(url).path.lstrip("/")
    await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await connection.close()


def percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p99 in milliseconds."""
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[int(len(ordered) * 0.99)] * 1000
