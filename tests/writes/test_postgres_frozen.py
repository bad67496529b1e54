"""PostgreSQL frozen (every process stopped: it accepts connections and never answers).

Every route that needs it answers 503 within its budget instead of hanging, the probes say so,
failover treats it as down, and once it runs again the service recovers without a restart. The
PostgreSQL here is a private throwaway server, never the machine's shared one.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from collections.abc import Callable, Iterator

import psutil
import pytest
from fastapi.testclient import TestClient

from somamemory.app import create_app
from somamemory.errors import BackendUnavailable
from somamemory.schema import upgrade_to_head
from somamemory.settings import Settings
from somamemory.stores.driver_errors import within

from ..conftest import TOKEN
from .test_postgres_outage import PrivatePostgres

AUTH = {"Authorization": f"Bearer {TOKEN}", "X-Soma-Namespace": "frozen"}
NO_ANSWER = "PostgreSQL did not answer"


class FreezablePostgres(PrivatePostgres):
    """A private PostgreSQL whose processes (postmaster and backends) can be stopped and resumed."""

    def _processes(self) -> list[psutil.Process]:
        postmaster = psutil.Process(int((self.data / "postmaster.pid").read_text().split()[0]))
        return [postmaster, *postmaster.children(recursive=True)]

    def freeze(self) -> None:
        for process in self._processes():
            process.suspend()  # SIGSTOP

    def thaw(self) -> None:
        for process in self._processes():
            with contextlib.suppress(psutil.NoSuchProcess):
                process.resume()  # SIGCONT


@pytest.fixture
def postgres() -> Iterator[FreezablePostgres]:
    server = FreezablePostgres()
    server.start()
    upgrade_to_head(server.url)
    yield server
    with contextlib.suppress(psutil.Error, OSError):  # never leave it stopped
        server.thaw()
    with contextlib.suppress(subprocess.CalledProcessError):
        server.stop()
    server.remove()


def _settings(
    make_settings: Callable[..., Settings], postgres: PrivatePostgres, prefix: str, **extra: object
) -> Settings:
    # hash embeddings: these tests judge availability, not meaning
    return make_settings(
        postgres_url=postgres.url,
        redis_key_prefix=prefix,
        postgres_timeout_seconds=1.0,
        connect_timeout_seconds=1.0,
        force_hash_embeddings=True,
        **extra,
    )


def _store(client: TestClient, coord: str, text: str) -> int:
    body = {"coord": coord, "payload": {"text": text}}
    return client.post("/memories", json=body, headers=AUTH).status_code


def _wait_until(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"never {what}"
        time.sleep(0.1)


def test_every_route_answers_503_while_postgres_is_frozen_then_recovers(
    postgres: FreezablePostgres,
    make_settings: Callable[..., Settings],
    own_redis_prefix: str,
) -> None:
    # the periodic PostgreSQL check is left out, so every route meets the frozen server itself
    # (with it, failover would soon answer from Redis: see the test below)
    settings = _settings(make_settings, postgres, own_redis_prefix, backend_check_seconds=3600)
    with TestClient(create_app(settings)) as client:
        assert _store(client, "1", "before the freeze") == 200
        assert _store(client, "2", "before the freeze") == 200

        postgres.freeze()
        calls = {
            "write": lambda: client.post(
                "/memories", json={"coord": "3", "payload": {"text": "frozen"}}, headers=AUTH
            ),
            "batch": lambda: client.post(
                "/memories/batch",
                json={"items": [{"coord": "4", "payload": {"text": "frozen"}}]},
                headers=AUTH,
            ),
            "read": lambda: client.get("/memories/5", headers=AUTH),  # not cached: PostgreSQL
            "versions": lambda: client.get("/memories/1/versions", headers=AUTH),
            "search": lambda: client.post(
                "/memories/search", json={"query": "before the freeze"}, headers=AUTH
            ),
            "stats": lambda: client.get("/stats", headers=AUTH),
            "delete": lambda: client.delete("/memories/2", headers=AUTH),
        }
        for route, call in calls.items():
            response = call()
            assert response.status_code == 503, (route, response.text)
            assert NO_ANSWER in response.json()["detail"], (route, response.text)
            assert response.headers["Retry-After"] == "2", route  # a client knows when to retry
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["code"] == "not_ready"
        # /health is a report: it answers, and says PostgreSQL is not answering
        health = client.get("/health", headers=AUTH).json()
        assert health["kv_store"] is False
        assert health["backends"]["postgres"]["ok"] is False
        assert NO_ANSWER in health["backends"]["postgres"]["detail"]
        assert health["reconcile_backlog"] is None  # the outbox lives in PostgreSQL too

        postgres.thaw()
        _wait_until(lambda: client.get("/readyz").status_code == 200, "ready again")
        assert _store(client, "6", "after the thaw") == 200
        got = client.get("/memories/6", headers=AUTH)
        assert got.status_code == 200 and got.json()["memory"]["payload"] == {
            "text": "after the thaw"
        }
        health = client.get("/health", headers=AUTH).json()
        assert health["backends"]["postgres"]["ok"] is True and health["mode"] == "normal"


def test_failover_treats_a_frozen_postgres_as_down(
    postgres: FreezablePostgres,
    make_settings: Callable[..., Settings],
    own_redis_prefix: str,
) -> None:
    settings = _settings(make_settings, postgres, own_redis_prefix, backend_check_seconds=0.2)

    def mode() -> str:
        return str(client.get("/health", headers=AUTH).json()["mode"])

    with TestClient(create_app(settings)) as client:
        assert _store(client, "1", "before the freeze") == 200
        postgres.freeze()
        _wait_until(lambda: mode() == "redis-only", "went Redis-only")
        assert _store(client, "2", "while frozen") == 200  # journaled in Redis
        link = {"from_coord": "1", "to_coord": "2"}
        assert client.post("/graph/link", json=link, headers=AUTH).status_code == 503

        postgres.thaw()
        _wait_until(lambda: mode() == "normal", "went back to normal")
        assert _store(client, "3", "after the thaw") == 200
        assert client.post("/graph/link", json=link, headers=AUTH).status_code == 200  # the graph
        linked = client.get("/graph/neighbors", params={"coord": "1"}, headers=AUTH).json()
        assert [n["coord"] for n in linked["neighbors"]] == ["2.0"]  # is back, with the replay
        for coord, text in [
            ("1", "before the freeze"),
            ("2", "while frozen"),
            ("3", "after the thaw"),
        ]:
            got = client.get(f"/memories/{coord}", headers=AUTH)
            assert got.status_code == 200 and got.json()["memory"]["payload"] == {"text": text}
        versions = client.get("/memories/2/versions", headers=AUTH).json()["versions"]
        assert [v["version"] for v in versions] == [1]  # the journaled write, replayed once


async def _cleanup_waits_on_the_server(started: asyncio.Event, release: asyncio.Event) -> None:
    """Like a driver call on a frozen server: cancelling it waits for the server too."""
    started.set()
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        await release.wait()
        raise


def test_a_call_gives_up_without_waiting_for_the_drivers_cleanup() -> None:
    async def scenario() -> None:
        started, release = asyncio.Event(), asyncio.Event()
        work = asyncio.ensure_future(_cleanup_waits_on_the_server(started, release))
        with pytest.raises(BackendUnavailable, match=r"PostgreSQL did not answer within 0\.05 s"):
            await within(work, 0.05, "postgres", "PostgreSQL")
        assert started.is_set() and not work.done()  # its cleanup goes on in the background
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await work

    asyncio.run(scenario())
