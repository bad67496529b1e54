"""Backends behind small protocols: canonical key-value stores, caches, locks, vector stores."""

from .protocols import Cache, KeyValueStore, Locks, VectorStore

__all__ = ["Cache", "KeyValueStore", "Locks", "VectorStore"]
