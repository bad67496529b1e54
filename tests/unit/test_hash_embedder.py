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
