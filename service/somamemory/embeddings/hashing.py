"""A deterministic embedder with no model: signed feature hashing of words and character n-grams.

Identical texts give identical vectors; texts that share words and word pieces point the same way,
so cosine similarity is meaningful (if far from a language model's). Vectors are L2-normalised.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import re
from collections.abc import Sequence

import numpy as np

from .base import EmbedderInfo

_WORD = re.compile(r"\w+", re.UNICODE)
_NGRAM = 3
_WORD_WEIGHT = 1.0
_NGRAM_WEIGHT = 0.5
# Below this many characters hashing takes well under a millisecond: cheaper than a thread hop.
INLINE_CHARACTERS = 4096


def _features(text: str) -> list[tuple[str, float]]:
    features: list[tuple[str, float]] = []
    for word in _WORD.findall(text.lower()):
        features.append((f"w:{word}", _WORD_WEIGHT))
        padded = f"<{word}>"
        for start in range(max(1, len(padded) - _NGRAM + 1)):
            features.append((f"g:{padded[start : start + _NGRAM]}", _NGRAM_WEIGHT))
    return features


@functools.lru_cache(maxsize=1 << 17)
def _bucket(feature: str, dim: int) -> tuple[int, float]:
    """Where a feature lands and with which sign (cached: words and n-grams repeat a lot)."""
    digest = int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest())
    return (digest >> 1) % dim, (1.0 if digest & 1 else -1.0)


class HashEmbedder:
    """Feature hashing into ``dim`` buckets, with a hash-derived sign to cancel collisions."""

    name = "hash"

    def __init__(self, dim: int) -> None:
        self.dim = dim

    @property
    def info(self) -> EmbedderInfo:
        return EmbedderInfo(kind="hash", model=None, dim=self.dim)

    def embed_one(self, text: str) -> list[float]:
        vector = np.zeros(self.dim, dtype=np.float64)
        for feature, weight in _features(text):
            index, sign = _bucket(feature, self.dim)
            vector[index] += sign * weight
        norm = float(np.linalg.norm(vector))
        if norm == 0.0:
            vector[0] = 1.0  # empty text: a fixed unit vector, never a zero (COSINE needs a norm)
            norm = 1.0
        return (vector / norm).astype(np.float32).tolist()

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed; a large input is hashed in a worker thread, so the event loop (and every other
        request, /healthz included) never waits on it."""
        if sum(len(text) for text in texts) <= INLINE_CHARACTERS:
            return [self.embed_one(text) for text in texts]
        return await asyncio.to_thread(lambda: [self.embed_one(text) for text in texts])
