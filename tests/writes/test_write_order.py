"""Single writes, group commits and batches to one coordinate keep one order across stores.

The vector left in Milvus is the one of the last PostgreSQL commit, whichever route wrote it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from somamemory.app import create_app
from somamemory.embeddings import text_of
from somamemory.settings import Settings

from ..conftest import TOKEN

ROUNDS = 15


@pytest.fixture(scope="module", params=["batching-off", "batching-on", "embedded-default"])
def writer(
    request: pytest.FixtureRequest,
    make_settings: Callable[..., Settings],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[TestClient]:
    options = {
        "enable_batch_upsert": request.param != "batching-off",
        "batch_flush_ms": 2,
        "force_hash_embeddings": True,  # judges order, not meaning: one vector per text, cheaply
    }
    if request.param == "embedded-default":  # its own PostgreSQL, no Redis: in-process locks
        data_dir = tmp_path_factory.mktemp("embedded")
        settings = Settings(api_token=TOKEN, data_dir=data_dir, **options)  # type: ignore[arg-type]
    else:
        settings = make_settings(**options)
    with TestClient(create_app(settings)) as client:
        if request.param == "embedded-default":
            health = client.get("/health", headers={"Authorization": f"Bearer {TOKEN}"}).json()
            assert health["backends"]["postgres"]["kind"] == "embedded"
        yield client


def test_concurrent_single_and_batch_writes_leave_the_vector_of_the_last_commit(
    writer: TestClient, headers: dict[str, str], namespace: str
) -> None:
    backends = writer.app.state.backends  # type: ignore[attr-defined]
    with ThreadPoolExecutor(4) as pool:
        for n in range(ROUNDS):
            coord = f"{n},0"
            single = [{"coord": coord, "payload": {"text": f"single {n} {i}"}} for i in range(2)]
            batch = {
                "items": [{"coord": coord, "payload": {"text": f"batch {n} {i}"}} for i in range(2)]
            }
            futures = [
                pool.submit(writer.post, "/memories", json=b, headers=headers) for b in single
            ]
            futures.append(pool.submit(writer.post, "/memories/batch", json=batch, headers=headers))
            assert all(f.result().status_code == 200 for f in futures)

            last = writer.get(f"/memories/{coord}", headers=headers).json()["memory"]
            assert last["version"] == 4
            expected = writer.portal.call(backends.embedder.embed, [text_of(last["payload"])])[0]  # type: ignore[union-attr]
            stored = writer.portal.call(backends.vectors.get_vector, namespace, f"{n}.0,0.0")  # type: ignore[union-attr]
            assert stored == pytest.approx(expected, abs=1e-5), f"round {n}: a stale vector stayed"
