"""Changing the embedding model under load: the service builds the new model's collection from
PostgreSQL while searches answer from the old one and writes go on, then switches once.

The first run stores 200 memories on the hash embedder (64 dims); the second starts on the
bundled model (384 dims) with writers and searchers running. No response may be a 5xx other
than a 503 saying why, none may speak of dimensions, every memory must end in the new collection
with 384-dim vectors, the old collection must be gone, and the switch counter must read 1.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from somamemory.app import create_app
from somamemory.schema import upgrade_to_head
from somamemory.settings import Settings

from ..conftest import TOKEN, create_database, drop_database

BUDGET = "The quarterly budget review meeting moved to Thursday afternoon"
PARAPHRASE = "when is the finance planning session now?"
TOPICS = ["garden", "river", "invoice", "violin", "harbour", "glacier", "pepper", "lantern"]


def _text(i: int) -> str:
    return f"note {i}: the {TOPICS[i % 8]} log of day {i // 8} mentions {TOPICS[(i * 3) % 8]}"


def _wait(condition: Callable[[], bool], what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.2)


@pytest.fixture
def database() -> Any:
    url = create_database()  # its own: no other app's reconciler may drain its outbox
    upgrade_to_head(url)
    yield url
    drop_database(url)


def test_a_model_change_under_load_switches_once_and_loses_nothing(
    make_settings: Callable[..., Settings],
    tmp_path: Path,
    database: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="somamemory.reembed")
    namespace = f"re-{uuid.uuid4().hex[:8]}"
    auth = {"Authorization": f"Bearer {TOKEN}", "X-Soma-Namespace": namespace}
    common = {"data_dir": tmp_path, "postgres_url": database, "reconcile_interval_seconds": 0.5}
    before = make_settings(force_hash_embeddings=True, embedding_dim=64, **common)
    with TestClient(create_app(before)) as client:
        items = [{"coord": str(i), "payload": {"text": _text(i)}} for i in range(1, 200)]
        items.append({"coord": "200", "payload": {"text": BUDGET}})
        for start in range(0, 200, 50):
            written = client.post(
                "/memories/batch", json={"items": items[start : start + 50]}, headers=auth
            )
            assert written.status_code == 200, written.text
        old_collection = client.app.state.backends.plan.target  # type: ignore[attr-defined]
        assert client.get("/health", headers=auth).json()["reembedding"] is None

    after = make_settings(**common)  # the product's default: the bundled model
    answers: list[tuple[str, int, dict[str, Any]]] = []
    reports: list[dict[str, Any]] = []
    written_during: list[str] = []
    stop = threading.Event()
    with TestClient(create_app(after)) as client:

        def record(kind: str, response: Any) -> None:
            answers.append((kind, response.status_code, response.json()))

        def write() -> None:
            i = 1000
            while not stop.is_set():
                body = {"coord": str(i), "payload": {"text": f"written during the change {i}"}}
                response = client.post("/memories", json=body, headers=auth)
                record("write", response)
                if response.status_code == 200:
                    written_during.append(f"{i}.0")
                i += 1
                time.sleep(0.02)

        def search() -> None:
            modes = ["hybrid", "vector", "keyword"]
            n = 0
            while not stop.is_set():
                body = {"query": _text(n % 200 + 1), "mode": modes[n % 3], "top_k": 5}
                record("search", client.post("/memories/search", json=body, headers=auth))
                n += 1

        def watch() -> None:
            while not stop.is_set():
                reports.append(client.get("/health", headers=auth).json())
                time.sleep(0.2)

        def switched() -> bool:
            return bool(reports) and (reports[-1].get("reembedding") or {}).get("state") == (
                "switched"
            )

        with ThreadPoolExecutor(4) as pool:
            running = [pool.submit(job) for job in (write, search, search, watch)]
            try:
                _wait(switched, "the new collection is complete and search switched")
                time.sleep(1.0)  # writes and searches go on after the switch too
            finally:
                stop.set()
            for job in running:
                job.result()

        for kind, status, body in answers:
            text = str(body).lower()
            assert status == 200 or (status == 503 and body.get("code") == "reembedding"), (
                kind,
                status,
                body,
            )
            assert "dim" not in text or status == 200, (kind, status, body)
        assert sum(kind == "search" for kind, _, _ in answers) > 10
        assert len(written_during) > 10

        during = [r["reembedding"] for r in reports if r["reembedding"]]
        assert during[0]["from"] == {"kind": "hash", "model": None, "dim": 64}
        assert during[0]["to"]["kind"] == "onnx" and during[0]["to"]["dim"] == 384
        assert during[-1]["state"] == "switched" and during[-1]["remaining"] == 0
        assert during[-1]["total"] >= 200

        # every memory, old and new, is in the new collection with a 384-dim vector
        _wait(
            lambda: client.get("/health", headers=auth).json()["reconcile_backlog"] == 0,
            "the outbox is settled",
        )
        backends = client.app.state.backends  # type: ignore[attr-defined]
        vectors = backends.vectors
        rows = vectors._client.query(
            vectors.collection,
            filter=f'namespace == "{namespace}"',
            output_fields=["coord", "vector"],
            consistency_level="Strong",
        )
        stored = {row["coord"]: row["vector"] for row in rows}
        expected = {f"{i}.0" for i in range(1, 201)} | set(written_during)
        assert set(stored) == expected
        assert {len(vector) for vector in stored.values()} == {384}
        stats = client.get("/stats", headers=auth).json()
        assert stats["vector_count"] == stats["total_memories"] == len(expected)

        family = client.portal.call(backends.collections.family, "soma_memories")  # type: ignore[union-attr]
        assert [facts.name for facts in family] == [vectors.collection]
        assert old_collection != vectors.collection
        assert family[0].identity == backends.embedder.info

        assert client.get("/health", headers=auth).json()["reconcile_parked"] == 0
        logged = [r.getMessage() for r in caplog.records if r.name.startswith("somamemory.reembed")]
        assert any(
            line.startswith("re-embedding: the embedder changed from hash") for line in logged
        )
        assert any(" of " in line and "re-embedded into" in line for line in logged)  # progress
        assert sum(line.startswith("re-embedding complete") for line in logged) == 1

        metrics = client.get("/metrics").text
        assert "somamemory_reembed_switches_total 1.0" in metrics
        assert "somamemory_reembed_remaining 0.0" in metrics

        found = client.post(
            "/memories/search", json={"query": PARAPHRASE, "mode": "vector"}, headers=auth
        )
        assert found.status_code == 200, found.text
        assert found.json()["memories"][0]["coord"] == "200.0"
