"""Backends behind small protocols: canonical key-value stores, caches, locks, vector stores."""

from .protocols import (
    Cache,
    CacheLookup,
    GraphStore,
    KeyValueStore,
    Locks,
    PolicyStore,
    RateLimiter,
    TokenStore,
    VectorStore,
)

__all__ = [
    "Cache",
    "CacheLookup",
    "GraphStore",
    "KeyValueStore",
    "Locks",
    "PolicyStore",
    "RateLimiter",
    "TokenStore",
    "VectorStore",
]
