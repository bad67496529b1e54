"""The offline hash embedder is deterministic and its cosine similarity means something."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from somamemory.embeddings import HashEmbedder

embedder = HashEmbedder(384)


def _cos(a: str, b: str) -> float:
    return float(np.dot(embedder.embed_one(a), embedder.embed_one(b)))


@given(st.text(max_size=200))
def test_identical_text_identical_unit_vector(text: str) -> None:
    first, second = embedder.embed_one(text), HashEmbedder(384).embed_one(text)
    assert first == second
    assert abs(float(np.linalg.norm(first)) - 1.0) < 1e-5


def test_texts_sharing_most_words_score_higher_than_unrelated_texts() -> None:
    base = "the user prefers green tea in the morning"
    close = "in the morning the user prefers tea"
    unrelated = "quarterly tax filing deadline is april"
    assert _cos(base, close) > 0.6
    assert _cos(base, unrelated) < 0.2
    assert _cos(base, close) > _cos(base, unrelated) + 0.4


def test_word_pieces_bring_inflections_together() -> None:
    assert _cos("deployments failing", "deployment failed") > _cos(
        "deployments failing", "banana bread"
    )


async def test_a_large_input_is_hashed_off_the_event_loop() -> None:
    """The loop keeps turning (other requests, /healthz) while megabytes of text are hashed."""
    import asyncio

    embedder = HashEmbedder(64)
    texts = [" ".join(f"word{i}" for i in range(20_000))] * 10  # about 1.2 MB
    ticks = 0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0)

    counting = asyncio.create_task(ticker())
    vectors = await embedder.embed(texts)
    ticks_during = ticks
    done.set()
    await counting
    assert len(vectors) == 10 and vectors[0] == embedder.embed_one(texts[0])
    assert ticks_during > 1, "the event loop was blocked while hashing"
