"""One app on its own database (no other app's reconciler may settle its outbox), with a
clock the tests move by hand: expiry and decay are tested without sleeping."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from fastapi.testclient import TestClient

from somamemory.app import create_app
from somamemory.expiry import Sweeper
from somamemory.reconciler import Reconciler
from somamemory.schema import upgrade_to_head
from somamemory.service import MemoryService
from somamemory.settings import Settings

from ..conftest import create_database, drop_database


class ManualClock:
    """A clock that stands still until a test moves it."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Life:
    """The app, its service with the manual clock, and direct access to its database."""

    client: TestClient
    service: MemoryService
    clock: ManualClock
    database: str

    def sql(self, statement: str, *args: Any) -> list[asyncpg.Record]:
        async def run() -> list[asyncpg.Record]:
            connection = await asyncpg.connect(self.database)
            try:
                return list(await connection.fetch(statement, *args))
            finally:
                await connection.close()

        return asyncio.run(run())

    def sweeper(self, *, batch_size: int = 500, max_batches: int = 20) -> Sweeper:
        app: Any = self.client.app
        return Sweeper(
            live=self.service.live,
            vectors=self.service.vectors,
            metrics=app.state.metrics,
            clock=self.clock,
            batch_size=batch_size,
            max_batches=max_batches,
        )

    def reconcile(self) -> int:
        """One reconciler round with no grace period: the outbox drained now."""
        app: Any = self.client.app
        reconciler = Reconciler(
            live=self.service.live,
            vectors=self.service.vectors,
            embedder=self.service.embedder,
            metrics=app.state.metrics,
            settle=self.service.writes.settle,
            grace_seconds=0,
        )
        return int(self.client.portal.call(reconciler.run_once))  # type: ignore[union-attr]

    def run(self, work: Callable[[], Any]) -> Any:
        """Run a coroutine function on the app's event loop."""
        return self.client.portal.call(work)  # type: ignore[union-attr]

    def metric(self, name: str) -> float:
        for line in self.client.get("/metrics").text.splitlines():
            if line.startswith(name + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0


@pytest.fixture(scope="package")
def life_app(make_settings: Callable[..., Settings]) -> Iterator[tuple[TestClient, str]]:
    url = create_database()
    upgrade_to_head(url)
    # judges expiry and ranking, not meaning: hash embeddings (ranking tests give vectors);
    # the background sweeper stays out of the way, the tests sweep when they mean to
    settings = make_settings(
        postgres_url=url,
        force_hash_embeddings=True,
        sweep_interval_seconds=3600,
        access_flush_seconds=3600,
        max_ttl_seconds=86_400,
    )
    with TestClient(create_app(settings)) as client:
        yield client, url
    drop_database(url)


@pytest.fixture
def life(life_app: tuple[TestClient, str]) -> Iterator[Life]:
    client, url = life_app
    app: Any = client.app
    service: MemoryService = app.state.service
    clock = ManualClock()
    service.clock = clock
    yield Life(client, service, clock, url)
    service.max_memories = 0
