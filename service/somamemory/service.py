"""The memory service: what a route asks for, carried out across the stores in the right order.

Write order: canonical commit first, then the cache, then the vector. A write is acknowledged only
after the canonical commit; the per-coordinate lock keeps the vector of the last commit last.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from . import health
from .access import Access
from .batching import Batcher
from .coords import normalize_coord
from .embeddings import Embedder
from .errors import BackendRefused, BackendUnavailable, InvalidInput, MemoryNotFound
from .filters import parse_filter
from .health import Deployment, Health
from .live import LiveStores
from .metrics import Metrics
from .models import (
    Consistency,
    DeletionReceipt,
    DeletionStatus,
    Memory,
    MemoryType,
    NewMemory,
    TypeCounts,
)
from .stores import CacheLookup, Locks, RateLimiter, VectorStore
from .writes import WritePath, Written, check_vector, prepare

log = logging.getLogger(__name__)
VERSIONS_PAGE_BYTES = 8 * 1_048_576


class MemoryService:
    """Store, read, list versions, delete and count memories of one namespace at a time."""

    def __init__(
        self,
        *,
        live: LiveStores,
        locks: Locks,
        vectors: VectorStore,
        embedder: Embedder,
        metrics: Metrics,
        writes: WritePath,
        deployment: Deployment,
        max_payload_bytes: int,
        max_top_k: int = 100,
        batcher: Batcher[NewMemory, Written] | None = None,
        rate_limiter: RateLimiter | None = None,
        access: Access | None = None,
    ) -> None:
        self.rate_limiter = rate_limiter
        # minted API tokens: authenticated and administered here
        self.access = access if access is not None else Access(live, cache_seconds=10.0)
        self.writes = writes
        self.batcher = batcher
        self.live = live  # the store and cache in use (failover switches them)
        self.locks = locks
        self.vectors = vectors
        self.embedder = embedder
        self.metrics = metrics
        self.deployment = deployment
        self.max_payload_bytes = max_payload_bytes
        self.max_top_k = max_top_k

    async def admit(self, caller: str) -> float | None:
        """Count one request of ``caller``: None to serve it, else seconds until it may retry."""
        if self.rate_limiter is None:
            return None
        return await self.rate_limiter.hit(caller)

    async def store_memory(
        self,
        namespace: str,
        coord: str,
        payload: dict[str, Any],
        *,
        memory_type: MemoryType = "episodic",
        importance: float = 0.0,
        vector: Sequence[float] | None = None,
    ) -> tuple[Memory, bool]:
        """Upsert a memory; return it and whether its vector reached the vector store.

        With batching on, the write joins the current group commit; otherwise it is written
        alone under the coordinate's lock (so its vector cannot be overtaken by an older one).
        """
        new = self.prepare(
            namespace,
            coord,
            payload,
            memory_type=memory_type,
            importance=importance,
            vector=vector,
        )
        if self.batcher is not None:
            written = await self.batcher.submit(new)
        else:
            (written,) = await self.writes.write_in_order([new])
        return written.memory, written.indexed

    def prepare(
        self,
        namespace: str,
        coord: str,
        payload: dict[str, Any],
        *,
        memory_type: MemoryType = "episodic",
        importance: float = 0.0,
        vector: Sequence[float] | None = None,
    ) -> NewMemory:
        """Validate one write for this service (400/413 on bad input)."""
        return prepare(
            namespace,
            coord,
            payload,
            memory_type=memory_type,
            importance=importance,
            vector=vector,
            max_payload_bytes=self.max_payload_bytes,
            dim=self.embedder.dim,
        )

    async def store_many(self, news: Sequence[NewMemory]) -> list[Written]:
        """Write prepared memories in one transaction, in order with every other write."""
        return await self.writes.write_in_order(news) if news else []

    async def get_memory_json(self, namespace: str, coord: str) -> bytes:
        """The live memory as JSON: from the cache, else from the store (filling the cache).

        JSON rather than an object: a cache hit is answered without decoding anything.
        """
        key = normalize_coord(coord)
        cached = await self._cache_get(namespace, key)
        if cached.value is not None:
            return cached.value
        memory = await self.live.store.get(namespace, key)
        if memory is None:
            raise MemoryNotFound(f"no memory at coordinate {key} in namespace {namespace!r}")
        if cached.lease is not None:
            await self._cache_fill(memory, cached.lease)
        return memory.to_json().encode()

    async def memory_versions(
        self, namespace: str, coord: str, *, after: int = 0, limit: int = 100
    ) -> tuple[str, list[Memory], int | None]:
        """One page of versions newer than ``after``, oldest first: (coord, page, next cursor).

        A page holds at most ``limit`` versions and, past the first, stops near
        ``VERSIONS_PAGE_BYTES`` of JSON, so large memories cannot make a huge answer.
        """
        key = normalize_coord(coord)
        history = await self.live.store.versions(namespace, key, after=after, limit=limit + 1)
        if not history and after == 0:
            raise MemoryNotFound(f"no memory at coordinate {key} in namespace {namespace!r}")
        page: list[Memory] = []
        size = 0
        for memory in history[:limit]:
            size += len(memory.to_json())
            if page and size > VERSIONS_PAGE_BYTES:
                break
            page.append(memory)
        more = len(page) < len(history)
        return key, page, (page[-1].version if more and page else None)

    async def delete_memory(self, namespace: str, coord: str) -> DeletionReceipt:
        """Delete a memory, its versions, its cache entry and its vector; idempotent.

        The receipt says where it is gone from already. The canonical delete is the one that
        counts (it also queues the vector's removal), so a cache or vector store that does not
        answer leaves the delete standing and says so instead of failing it.
        """
        key = normalize_coord(coord)
        async with self.locks.hold(f"{namespace}:{key}"):
            async with self.live.gate.passage():
                deleted = await self.live.store.delete(namespace, key)
            cache_state = "none"
            cache = self.live.cache
            if cache is not None:
                try:
                    await cache.invalidate(namespace, key)
                    cache_state = "done"
                except BackendUnavailable:
                    log.warning(
                        "cache entry of a deleted memory not dropped; it expires on its own"
                    )
                    cache_state = "unreachable"
            vector_done = await self.writes.unindex(namespace, key)
        return DeletionReceipt(
            coord=key,
            deleted=deleted,
            canonical="done" if deleted else "absent",
            cache=cache_state,
            vector="done" if vector_done else "pending",
        )

    async def deletion_status(self, namespace: str, coord: str) -> DeletionStatus:
        """Whether the canonical store, the cache and the vector store are all clear of it."""
        key = normalize_coord(coord)
        canonical = await self.live.store.get(namespace, key) is None
        cache = self.live.cache
        cached = (await cache.get(namespace, key)).value if cache is not None else None
        vector = await self.vectors.get_vector(namespace, key)
        return DeletionStatus(key, canonical, cached is None, vector is None)

    async def search(
        self,
        namespace: str,
        *,
        query: str | None = None,
        vector: Sequence[float] | None = None,
        top_k: int = 10,
        filters: dict[str, Any] | None = None,
        memory_type: str | Sequence[str] | None = None,
        consistency: Consistency | None = None,
    ) -> list[tuple[Memory, float]]:
        """The namespace's memories nearest to the query text or vector, best first.

        Payloads come from the canonical store, so a memory deleted or changed after its vector
        was written is never answered stale: a vector without its memory is skipped.
        """
        if not 1 <= top_k <= self.max_top_k:
            raise InvalidInput(f"top_k must be between 1 and {self.max_top_k} (SOMA_MAX_TOP_K)")
        if vector is None and (query is None or not query.strip()):
            raise InvalidInput("give a non-empty 'query' text or a 'vector'")
        where = parse_filter(namespace, filters, memory_type)
        embedding = await self._vector_for_query(query or "", vector)
        if where is None:
            return []
        try:
            hits = await self.vectors.search(
                embedding, top_k=top_k, where=where, consistency=consistency
            )
        except (BackendUnavailable, BackendRefused) as exc:
            failure = type(exc.__cause__ or exc).__name__  # never the server's words to the client
            raise BackendUnavailable(exc.backend, f"search failed: {failure}") from exc
        memories = await self.live.store.get_many(namespace, [coord for coord, _ in hits])
        return [(memories[coord], score) for coord, score in hits if coord in memories]

    async def counts(self, namespace: str) -> tuple[TypeCounts, int | None]:
        """Live memories by type (canonical) and the vector count (None if Milvus is down)."""
        counts = await self.live.store.counts(namespace)
        try:
            vector_count: int | None = await self.vectors.count(namespace)
        except (BackendUnavailable, BackendRefused):
            log.warning("vector count unavailable", exc_info=True)
            vector_count = None
        return counts, vector_count

    async def health(self) -> Health:
        """Each backend's state, the degradation mode and the vector backlog."""
        return await health.check(
            self.live, self.vectors, self.embedder, self.deployment, self.metrics
        )

    async def ready(self) -> bool:
        """Whether the canonical store and the vector store both answer."""
        return await health.ready(self.live, self.vectors)

    # ----- helpers ---------------------------------------------------------------------------

    async def _vector_for_query(self, text: str, vector: Sequence[float] | None) -> list[float]:
        if vector is None:
            return (await self.embedder.embed([text]))[0]
        return check_vector(vector, self.embedder.dim)

    async def _cache_get(self, namespace: str, key: str) -> CacheLookup:
        cache = self.live.cache
        if cache is None:
            return CacheLookup(None)
        try:
            found = await cache.get(namespace, key)
        except BackendUnavailable:
            log.warning("cache read failed; reading the store", exc_info=True)
            found = CacheLookup(None)
        self.metrics.cache_requests.labels(result="hit" if found.value else "miss").inc()
        return found

    async def _cache_fill(self, memory: Memory, lease: str) -> None:
        cache = self.live.cache
        if cache is None:
            return
        try:
            await cache.fill(memory, lease)
        except BackendUnavailable:
            log.warning("cache fill failed", exc_info=True)
