"""The OpenAI-compatible embedder against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import numpy as np
import pytest

from somamemory.embeddings.openai import OpenAIEmbedder, endpoint_url, retry_after_seconds
from somamemory.errors import BackendUnavailable, EmbeddingUnavailable

from .fake_endpoint import FakeEmbeddingEndpoint, Reply, closed_port, vector_for

DIM = 8
MakeEmbedder = Callable[..., OpenAIEmbedder]


@pytest.fixture
def endpoint() -> Iterator[FakeEmbeddingEndpoint]:
    server = FakeEmbeddingEndpoint(DIM).start()
    yield server
    server.stop()


@pytest.fixture
async def make_embedder(endpoint: FakeEmbeddingEndpoint) -> AsyncIterator[MakeEmbedder]:
    made: list[OpenAIEmbedder] = []

    def make(**overrides: Any) -> OpenAIEmbedder:
        options: dict[str, Any] = {
            "model": "test-model",
            "dim": DIM,
            "api_key": None,
            "timeout": 2.0,
            "max_retries": 2,
            "batch_size": 4,
            "backoff_seconds": 0.001,
        }
        options.update(overrides)
        embedder = OpenAIEmbedder(options.pop("url", endpoint.base_url), **options)
        made.append(embedder)
        return embedder

    yield make
    for embedder in made:
        await embedder.aclose()


def expected(text: str) -> list[float]:
    vector = np.asarray(vector_for(text, DIM))
    return (vector / np.linalg.norm(vector)).tolist()


async def test_texts_are_sent_in_batches_and_vectors_come_back_in_input_order(
    endpoint: FakeEmbeddingEndpoint, make_embedder: MakeEmbedder
) -> None:
    texts = [f"memory {i}" for i in range(10)]

    vectors = await make_embedder(batch_size=4).embed(texts)

    assert [len(r.body["input"]) for r in endpoint.requests] == [4, 4, 2]
    assert [t for r in endpoint.requests for t in r.body["input"]] == texts
    assert {r.body["model"] for r in endpoint.requests} == {"test-model"}
    assert {r.path for r in endpoint.requests} == {"/v1/embeddings"}
    for text, vector in zip(texts, vectors, strict=True):
        assert vector == pytest.approx(expected(text), abs=1e-6)
        assert math.fsum(x * x for x in vector) == pytest.approx(1.0, abs=1e-5)


async def test_no_texts_make_no_request(
    endpoint: FakeEmbeddingEndpoint, make_embedder: MakeEmbedder
) -> None:
    assert await make_embedder().embed([]) == []
    assert endpoint.requests == []


async def test_the_full_endpoint_url_works_too(
    endpoint: FakeEmbeddingEndpoint, make_embedder: MakeEmbedder
) -> None:
    await make_embedder(url=endpoint.base_url + "/embeddings").embed(["hello"])
    assert [r.path for r in endpoint.requests] == ["/v1/embeddings"]


async def test_the_api_key_is_sent_as_a_bearer_token(
    endpoint: FakeEmbeddingEndpoint, make_embedder: MakeEmbedder
) -> None:
    await make_embedder(api_key="sk-test-123").embed(["hello"])
    await make_embedder(api_key=None).embed(["hello"])

    with_key, without_key = endpoint.requests
    assert with_key.headers["authorization"] == "Bearer sk-test-123"
    assert "authorization" not in without_key.headers


async def test_a_500_is_retried_then_succeeds(
    endpoint: FakeEmbeddingEndpoint, make_embedder: MakeEmbedder
) -> None:
    endpoint.then(Reply(status=500))

    vectors = await make_embedder().embed(["hello"])

    assert len(endpoint.requests) == 2
    assert vectors[0] == pytest.approx(expected("hello"), abs=1e-6)


async def test_a_429_is_retried_then_succeeds(
    endpoint: FakeEmbeddingEndpoint, make_embedder: MakeEmbedder
) -> None:
    endpoint.then(Reply(status=429, headers={"Retry-After": "0"}), Reply(status=429))

    vectors = await make_embedder(max_retries=2).embed(["hello"])

    assert len(endpoint.requests) == 3
    assert vectors[0] == pytest.approx(expected("hello"), abs=1e-6)


async def test_retry_after_is_honoured_up_to_the_cap(
    endpoint: FakeEmbeddingEndpoint, make_embedder: MakeEmbedder
) -> None:
    endpoint.then(Reply(status=429, headers={"Retry-After": "30"}))
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    embedder = make_embedder(backoff_seconds=0.001, max_backoff_seconds=0.3, sleep=record)
    await embedder.embed(["hello"])

    assert len(endpoint.requests) == 2
    assert waits == [0.3]  # the capped Retry-After: not 30 s, nor the 1 ms backoff


async def test_a_server_that_never_answers_in_time_is_unavailable_after_the_retries(
    endpoint: FakeEmbeddingEndpoint, make_embedder: MakeEmbedder
) -> None:
    endpoint.then(*[Reply(delay=5.0) for _ in range(3)])

    with pytest.raises(EmbeddingUnavailable, match=r"failed after 3 attempt\(s\): no answer"):
        await make_embedder(timeout=0.2, max_retries=2).embed(["hello"])

    assert len(endpoint.requests) == 3


async def test_a_persistent_500_is_unavailable_after_the_retries(
    endpoint: FakeEmbeddingEndpoint, make_embedder: MakeEmbedder
) -> None:
    endpoint.then(*[Reply(status=503, body={"error": "overloaded"}) for _ in range(4)])

    with pytest.raises(EmbeddingUnavailable) as caught:
        await make_embedder(max_retries=3).embed(["hello"])

    assert len(endpoint.requests) == 4
    assert "failed after 4 attempt(s): HTTP 503" in str(caught.value)
    assert "overloaded" in str(caught.value)
    assert isinstance(caught.value, BackendUnavailable)  # so the API answers 503


async def test_a_closed_port_is_unavailable_after_the_retries(make_embedder: MakeEmbedder) -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1"
    with pytest.raises(EmbeddingUnavailable, match=r"failed after 2 attempt.*cannot reach it"):
        await make_embedder(url=url, max_retries=1).embed(["hello"])


async def test_a_wrong_dimension_names_both_numbers_and_is_not_retried(
    endpoint: FakeEmbeddingEndpoint, make_embedder: MakeEmbedder
) -> None:
    endpoint.then(Reply(dim=1536))

    with pytest.raises(EmbeddingUnavailable) as caught:
        await make_embedder(dim=DIM).embed(["hello"])

    assert f"returned 1536-dim vectors; SOMA_EMBEDDING_DIM is {DIM}" in str(caught.value)
    assert len(endpoint.requests) == 1


async def test_a_wrong_count_is_unavailable(
    endpoint: FakeEmbeddingEndpoint, make_embedder: MakeEmbedder
) -> None:
    one = {"object": "embedding", "index": 0, "embedding": vector_for("a", DIM)}
    endpoint.then(Reply(body={"object": "list", "data": [one]}))

    with pytest.raises(EmbeddingUnavailable, match="returned 1 vectors for 2 texts"):
        await make_embedder().embed(["a", "b"])


async def test_duplicate_indices_are_unavailable(
    endpoint: FakeEmbeddingEndpoint, make_embedder: MakeEmbedder
) -> None:
    same = {"object": "embedding", "index": 0, "embedding": vector_for("a", DIM)}
    endpoint.then(Reply(body={"object": "list", "data": [same, same]}))

    with pytest.raises(EmbeddingUnavailable, match=r"returned indices \[0, 0\], not 0..1"):
        await make_embedder().embed(["a", "b"])


async def test_a_body_without_data_is_unavailable(
    endpoint: FakeEmbeddingEndpoint, make_embedder: MakeEmbedder
) -> None:
    endpoint.then(Reply(body={"unexpected": True}))

    with pytest.raises(EmbeddingUnavailable, match="not an embeddings list"):
        await make_embedder().embed(["a"])


async def test_a_400_is_not_retried(
    endpoint: FakeEmbeddingEndpoint, make_embedder: MakeEmbedder
) -> None:
    endpoint.then(Reply(status=400, body={"error": {"message": "input is too long"}}))

    with pytest.raises(EmbeddingUnavailable, match="rejected the request with HTTP 400") as caught:
        await make_embedder(max_retries=3).embed(["hello"])

    assert "input is too long" in str(caught.value)
    assert len(endpoint.requests) == 1


async def test_a_401_points_at_the_api_key(
    endpoint: FakeEmbeddingEndpoint, make_embedder: MakeEmbedder
) -> None:
    endpoint.then(Reply(status=401))

    with pytest.raises(EmbeddingUnavailable, match="SOMA_EMBEDDINGS_API_KEY"):
        await make_embedder().embed(["hello"])
    assert len(endpoint.requests) == 1


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("http://h:8080/v1", "http://h:8080/v1/embeddings"),
        ("http://h:8080/v1/", "http://h:8080/v1/embeddings"),
        ("https://h/v1/embeddings", "https://h/v1/embeddings"),
        ("https://h/openai/v1/embeddings/", "https://h/openai/v1/embeddings"),
        ("http://h:8080", "http://h:8080/v1/embeddings"),
    ],
)
def test_a_base_url_or_a_full_endpoint_url_is_accepted(given: str, used: str) -> None:
    assert endpoint_url(given) == used


def test_a_url_that_is_not_http_is_refused() -> None:
    with pytest.raises(ValueError, match="SOMA_EMBEDDINGS_URL"):
        endpoint_url("localhost:8080/v1")


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
