"""Which embedder the service runs, what /health says of it, and that no model that fails to
load (a missing package, a bad directory) ever stops the service from starting."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from somamemory.app import create_app
from somamemory.embeddings.bundled import bundled_model_dir
from somamemory.schema import upgrade_to_head
from somamemory.settings import Settings

from ..conftest import TOKEN, create_database, drop_database
from ..serve import Serve
from .fake_endpoint import FakeEmbeddingEndpoint

ONNX = {"kind": "onnx", "model": "all-MiniLM-L6-v2", "dim": 384}
HASH = {"kind": "hash", "model": None, "dim": 384}


def embedder_health(client: TestClient) -> dict[str, Any]:
    response = client.get("/health", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text
    embedder: dict[str, Any] = response.json()["embedder"]
    return embedder


def test_the_default_is_the_bundled_model_on_onnx_loaded_once(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(force_hash_embeddings=False)
    with TestClient(create_app(settings)) as first, TestClient(create_app(settings)) as second:
        assert embedder_health(first) == ONNX
        state = first.app.state, second.app.state  # type: ignore[attr-defined]
        assert state[0].backends.embedder is state[1].backends.embedder  # cached per process


def test_forced_hash_and_an_endpoint_say_so_in_health(
    make_settings: Callable[..., Settings],
) -> None:
    with TestClient(create_app(make_settings(force_hash_embeddings=True))) as client:
        assert embedder_health(client) == HASH
    endpoint = FakeEmbeddingEndpoint(384).start()
    try:
        settings = make_settings(embeddings_url=endpoint.base_url, embeddings_model="test-model")
        with TestClient(create_app(settings)) as client:
            assert embedder_health(client) == {"kind": "openai", "model": "test-model", "dim": 384}
    finally:
        endpoint.stop()


def test_a_model_that_cannot_load_leaves_the_service_on_hash_with_a_warning(
    make_settings: Callable[..., Settings],
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
    headers: dict[str, str],
) -> None:
    missing = str(tmp_path / "no-such-model")
    settings = make_settings(force_hash_embeddings=False, local_embedding_model=missing)
    with caplog.at_level(logging.WARNING), TestClient(create_app(settings)) as client:
        warnings = [r for r in caplog.records if r.name == "somamemory.embeddings.choice"]
        assert [r.levelno for r in warnings] == [logging.WARNING]
        assert missing in warnings[0].getMessage() and "hash" in warnings[0].getMessage()
        assert embedder_health(client) == HASH
        stored = client.post(
            "/memories", json={"coord": "1", "payload": {"text": "still served"}}, headers=headers
        )
        assert stored.status_code == 200, stored.text
        hits = client.post("/memories/search", json={"query": "still served"}, headers=headers)
        assert [hit["coord"] for hit in hits.json()["memories"]] == ["1.0"]


_NO_TORCH = """
import sys
for name in ("torch", "sentence_transformers", "transformers"):
    sys.modules[name] = None  # importing it raises ImportError, as where it is not installed
"""


@pytest.fixture(scope="module")
def own_database() -> Iterator[str]:
    database = create_database()
    upgrade_to_head(database)
    yield database
    drop_database(database)


@pytest.mark.parametrize(
    ("model", "expected"),
    [(None, ONNX), (str(bundled_model_dir()), HASH)],
    ids=["default-model", "a-model-that-needs-torch"],
)
def test_serve_starts_where_torch_cannot_be_imported(
    tmp_path: Path, own_database: str, model: str | None, expected: dict[str, Any]
) -> None:
    (tmp_path / "no-torch").mkdir()
    (tmp_path / "no-torch" / "sitecustomize.py").write_text(_NO_TORCH)
    env = {"PYTHONPATH": str(tmp_path / "no-torch"), "POSTGRES_URL": own_database}
    if model is not None:
        env["SOMA_LOCAL_EMBEDDING_MODEL"] = model
    serve = Serve(tmp_path / "data", env=env)
    try:
        serve.wait_ready(timeout=90)
        health = httpx.get(f"{serve.url}/health", headers=serve.headers(), timeout=10)
        assert health.json()["embedder"] == expected, serve.output()
        warned = "WARNING somamemory.embeddings.choice" in serve.output()
        assert warned == (expected == HASH), serve.output()
    finally:
        serve.stop()
