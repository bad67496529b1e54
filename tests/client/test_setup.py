"""Configuration from the environment, and a client that needs nothing but httpx."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from somamemory.client import DEFAULT_URL, SomaClient

from ..serve import Serve
from .conftest import TOKEN


def test_url_token_and_namespace_come_from_the_environment(
    live: Serve, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOMA_URL", live.url)
    monkeypatch.setenv("SOMA_API_TOKEN", TOKEN)
    monkeypatch.setenv("SOMA_NAMESPACE", namespace)
    with SomaClient() as soma:
        assert soma.store("5", {"from": "env"}).namespace == namespace
        assert soma.stats().total_memories == 1
    with SomaClient(namespace=f"{namespace}-arg") as other:  # an argument wins
        assert other.stats().namespace == f"{namespace}-arg"


def test_without_settings_the_client_talks_to_the_local_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("SOMA_URL", "SOMA_API_TOKEN", "SOMA_NAMESPACE"):
        monkeypatch.delenv(name, raising=False)
    with SomaClient() as soma:
        assert soma.connection.base_url == DEFAULT_URL == "http://127.0.0.1:10101"
        assert soma.connection.headers().keys() == {"User-Agent"}


def test_importing_the_client_loads_nothing_of_the_server() -> None:
    probe = (
        "import json, sys; import somamemory.client; "
        "print(json.dumps(sorted(name for name in sys.modules)))"
    )
    loaded = json.loads(
        subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, check=True
        ).stdout
    )
    ours = {name for name in loaded if name.startswith("somamemory")}
    assert ours <= {"somamemory"} | {n for n in ours if n.startswith("somamemory.client")}
    for heavy in ("pydantic", "fastapi", "starlette", "asyncpg", "redis", "pymilvus", "numpy"):
        assert heavy not in loaded, heavy
