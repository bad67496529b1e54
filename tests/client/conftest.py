"""A live ``somamemory serve`` for the client's tests, and a scripted server for its retries."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from somamemory.client import AsyncSomaClient, SomaClient

from ..serve import Serve, postmasters
from .adapters import Async, AwaitedSync, Client
from .recorder import Sleeps
from .scripted_server import Reply, ScriptedServer

TOKEN = "client-test-token"
MAX_PAYLOAD_BYTES = 4096


@pytest.fixture(scope="session")
def live() -> Iterator[Serve]:
    """The service on its embedded default, as a user runs it, with a known token."""
    # Not under pytest's temporary root: run as root, the embedded PostgreSQL runs as its own
    # user and needs to traverse every parent, and each pytest session that starts on the
    # machine makes that root private again (0700), which would lock the server out.
    base = Path(tempfile.mkdtemp(prefix="somamemory-client-"))
    data_dir = base / "data"
    server = Serve(
        data_dir,
        env={
            "SOMA_API_TOKEN": TOKEN,
            # these tests check what the client sends and reads, not what the model means:
            # hash embeddings (identical texts, identical vectors) start faster and suffice
            "SOMA_FORCE_HASH_EMBEDDINGS": "1",
            "SOMA_MAX_PAYLOAD_BYTES": str(MAX_PAYLOAD_BYTES),
        },
    )
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()
        for proc in postmasters(data_dir.resolve() / "postgres"):  # never leak a server
            proc.terminate()
        shutil.rmtree(base, ignore_errors=True)


MakeClient = Callable[..., Any]


@pytest.fixture(params=["sync", "async"])
async def make_client(request: pytest.FixtureRequest) -> AsyncIterator[MakeClient]:
    """Builds clients of one kind (sync or async), closed at the end of the test."""
    async with AsyncExitStack() as stack:

        def make(base_url: str, **options: Any) -> Client:
            if request.param == "sync":
                sync = SomaClient(base_url, **options)
                stack.callback(sync.close)
                return AwaitedSync(sync)
            if "sleep" in options:  # the tests' recorder is a plain function
                recorder = options.pop("sleep")

                async def sleep(seconds: float) -> None:
                    recorder(seconds)

                options["sleep"] = sleep
            client = AsyncSomaClient(base_url, **options)
            stack.push_async_callback(client.aclose)
            return Async(client)

        yield make


@pytest.fixture
def soma(live: Serve, namespace: str, make_client: MakeClient) -> Client:
    """A client of the live server in this test's own namespace."""
    client: Client = make_client(live.url, token=TOKEN, namespace=namespace)
    return client


@pytest.fixture
def scripted() -> Iterator[ScriptedServer]:
    server = ScriptedServer(default=Reply(200, {"status": "ok"})).start()
    yield server
    server.stop()


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()
