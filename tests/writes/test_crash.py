"""No acknowledged write is lost: the service is SIGKILLed under concurrent write load.

The service runs on the embedded default (its own PostgreSQL and milvus-lite under a temporary
data directory), so killing it harms nothing shared. After a restart every write that had been
acknowledged is readable, and (once the reconciler has drained the outbox) searchable.
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ..serve import Serve, postmasters


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "data"
    yield path
    for proc in postmasters(path.resolve() / "postgres"):
        proc.terminate()


async def _load(
    url: str, headers: dict[str, str], seconds: float, acknowledged: dict[str, str]
) -> dict[str, str]:
    """Write from 32 concurrent clients until killed, recording what was acknowledged."""
    stop = time.monotonic() + seconds

    async def writer(worker: int, client: httpx.AsyncClient) -> None:
        n = 0
        while time.monotonic() < stop:
            coord, text = f"{worker},{n}", f"worker {worker} note {n} {random.random()}"
            n += 1
            try:
                response = await client.post(
                    "/memories", json={"coord": coord, "payload": {"text": text}}
                )
            except httpx.HTTPError:
                return  # the service died under us: this write was never acknowledged
            if response.status_code == 200:
                acknowledged[f"{worker}.0,{n - 1}.0"] = text

    limits = httpx.Limits(max_connections=32)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=10, limits=limits) as c:
        await asyncio.gather(*(writer(worker, c) for worker in range(32)))
    return acknowledged


@pytest.mark.parametrize(
    ("batching", "stop_signal"),
    [("0", signal.SIGKILL), ("1", signal.SIGKILL), ("1", signal.SIGTERM)],
    ids=["kill-batching-off", "kill-batching-on", "sigterm-drains-batching-on"],
)
def test_no_acknowledged_write_is_lost_when_the_service_is_killed(
    data_dir: Path, batching: str, stop_signal: signal.Signals
) -> None:
    env = {"SOMA_ENABLE_BATCH_UPSERT": batching, "SOMA_BATCH_FLUSH_MS": "5"}
    first = Serve(data_dir, env)
    first.wait_ready()
    headers = first.headers()

    async def load_then_kill() -> dict[str, str]:
        acknowledged: dict[str, str] = {}
        loading = asyncio.create_task(_load(first.url, headers, 60, acknowledged))
        deadline = time.monotonic() + 30
        while len(acknowledged) < 200 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)  # until the load is well under way
        first.process.send_signal(stop_signal)  # mid-load
        return await loading

    acknowledged = asyncio.run(load_then_kill())
    first.process.wait(timeout=60)
    first.stop()
    assert len(acknowledged) > 50, "the load did not get going before the kill"

    second = Serve(data_dir, env)
    try:
        second.wait_ready()
        with httpx.Client(base_url=second.url, headers=headers, timeout=10) as client:
            lost = [
                coord
                for coord, text in acknowledged.items()
                if client.get(f"/memories/{coord}").json().get("memory", {}).get("payload")
                != {"text": text}
            ]
            assert lost == [], f"{len(lost)} acknowledged writes lost"
            if stop_signal == signal.SIGTERM:  # a drained shutdown leaves no vector owed
                assert client.get("/health").json()["reconcile_backlog"] == 0

            deadline = time.monotonic() + 60
            while client.get("/health").json()["reconcile_backlog"] != 0:
                assert time.monotonic() < deadline, "the reconciler did not drain the outbox"
                time.sleep(0.2)
            stats = client.get("/stats").json()
            assert stats["vector_count"] == stats["total_memories"] >= len(acknowledged)
            for coord, text in random.Random(7).sample(sorted(acknowledged.items()), 20):
                hits = client.post("/memories/search", json={"query": text, "top_k": 1})
                assert hits.json()["memories"][0]["coord"] == coord
    finally:
        second.stop()
