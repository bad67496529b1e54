"""Search by meaning with the default model (the bundled all-MiniLM-L6-v2 on onnxruntime, no
torch): paraphrases rank above unrelated texts, which the hash embedder cannot promise."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from somamemory.app import create_app
from somamemory.schema import upgrade_to_head
from somamemory.settings import Settings

from ..conftest import TOKEN, create_database, drop_database

AUTH = {"Authorization": f"Bearer {TOKEN}", "X-Soma-Namespace": "meaning"}
TEXTS = {
    "1": "The cat sat on the mat in the sun.",
    "2": "Quarterly tax returns are due at the end of April.",
    "3": "The deployment failed because the database migration timed out.",
    "4": "She planted tomatoes and basil in the garden this spring.",
}


@pytest.fixture(scope="module")
def model_client(make_settings: Callable[..., Settings]) -> Iterator[TestClient]:
    database = create_database()  # its own: 384-dim vectors in their own Milvus and outbox
    upgrade_to_head(database)
    settings = make_settings(force_hash_embeddings=False, embedding_dim=384, postgres_url=database)
    try:
        with TestClient(create_app(settings)) as client:
            yield client
    finally:
        drop_database(database)


def test_the_service_runs_the_bundled_model_on_onnx_by_default(model_client: TestClient) -> None:
    health = model_client.get("/health", headers=AUTH).json()
    assert health["embedder"] == {"kind": "onnx", "model": "all-MiniLM-L6-v2", "dim": 384}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("a kitten was lying on the rug", "1.0"),
        ("when do I have to file my taxes?", "2.0"),
        ("the release broke since the schema upgrade took too long", "3.0"),
        ("growing vegetables and herbs outdoors", "4.0"),
    ],
)
def test_a_paraphrase_ranks_above_unrelated_texts(
    model_client: TestClient, query: str, expected: str
) -> None:
    for coord, text in TEXTS.items():
        response = model_client.post(
            "/memories", json={"coord": coord, "payload": {"text": text}}, headers=AUTH
        )
        assert response.status_code == 200, response.text
    hits = model_client.post(
        "/memories/search", json={"query": query, "top_k": 4, "mode": "vector"}, headers=AUTH
    ).json()["memories"]
    assert hits[0]["coord"] == expected
    assert hits[0]["score"] > hits[1]["score"] + 0.1
