"""Embedders turn memory text into vectors."""

from .base import Embedder, text_of
from .hashing import HashEmbedder

__all__ = ["Embedder", "HashEmbedder", "text_of"]
