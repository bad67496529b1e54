"""The memory service: what a route asks for, carried out across the stores in the right order.

Write order: canonical commit first, then the cache, then the vector. A write is acknowledged only
after the canonical commit; the per-coordinate lock keeps the vector of the last commit last.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from . import health, history
from .access import Access
from .batching import Batcher
from .clock import Clock, system_clock
from .coords import normalize_coord
from .decay import DecayPolicy, ReadLog, age_seconds
from .embeddings import Embedder
from .errors import (
    BackendRefused,
    BackendUnavailable,
    InvalidInput,
    MemoryNotFound,
    ReembeddingInProgress,
)
from .expiry import ExpiryPolicy
from .filters import SearchFilter, parse_filter
from .graph import MemoryGraph
from .health import Deployment, Health
from .interchange import streaming
from .links import Expansion
from .live import LiveStores, PreviousIndex
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
from .policies import EffectivePolicy, Policies, checked_changes, effective
from .search_fusion import (
    DEFAULT_MODE,
    SEARCH_MODES,
    RankedHit,
    SearchMode,
    SearchResult,
    candidate_depth,
    keyword_weight,
    reciprocal_rank_fusion,
)
from .stores import CacheLookup, Locks, RateLimiter, VectorStore
from .stores.protocols import Decaying, Expiring, History, KeywordSearch
from .writes import WritePath, Written, check_vector, prepare

if TYPE_CHECKING:
    from .reembed.rebuild import Rebuild

log = logging.getLogger(__name__)
# A search result before its memory is read: coord, score, ranks by list, cosine similarity.
Ranked = tuple[str, float, dict[str, int | None], float | None]
VERSIONS_PAGE_BYTES = 8 * 1_048_576
RANKINGS = ("similarity", "blended")  # README, "Expiry and decay": the blended formula


class _PreviousGone(Exception):
    """The previous collection of a model change is gone: another replica switched."""


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
        clock: Clock = system_clock,
        expiry: ExpiryPolicy | None = None,
        decay: DecayPolicy | None = None,
        max_memories: int = 0,
        policies: Policies | None = None,
    ) -> None:
        self.clock = clock  # "now" of expiry and decay (tests inject their own)
        self.expiry = expiry if expiry is not None else ExpiryPolicy()
        self.decay = decay if decay is not None else DecayPolicy()
        self.max_memories = max_memories  # per namespace; 0: no cap
        # namespaces' own default TTLs and caps, over expiry's defaults and max_memories
        self.policies = policies if policies is not None else Policies(live, cache_seconds=5.0)
        self.reads = ReadLog()  # last reads, written to the store in batches
        self.rate_limiter = rate_limiter
        # minted API tokens: authenticated and administered here
        self.access = access if access is not None else Access(live, cache_seconds=10.0)
        self.writes = writes
        self.batcher = batcher
        self.live = live  # the store and cache in use (failover switches them)
        self.graph = MemoryGraph(live)  # links between memories, in PostgreSQL
        self.locks = locks
        self.vectors = vectors
        self.embedder = embedder
        self.metrics = metrics
        self.deployment = deployment
        self.max_payload_bytes = max_payload_bytes
        self.max_top_k = max_top_k
        self.rebuild: Rebuild | None = None  # a change of embedding model under way (runtime)

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
        ttl_seconds: object = None,
        expires_at: object = None,
        refresh_on_read: bool = False,
    ) -> tuple[Memory, bool]:
        """Upsert a memory; return it and whether its vector reached the vector store.

        With batching on, the write joins the current group commit; otherwise it is written
        alone under the coordinate's lock (so its vector cannot be overtaken by an older one).
        """
        defaults = None
        if ttl_seconds is None and expires_at is None:
            defaults = await self.default_ttls(namespace)
        new = self.prepare(
            namespace,
            coord,
            payload,
            memory_type=memory_type,
            importance=importance,
            vector=vector,
            ttl_seconds=ttl_seconds,
            expires_at=expires_at,
            refresh_on_read=refresh_on_read,
            default_ttl_seconds=defaults,
        )
        if self.batcher is not None:
            written = await self.batcher.submit(new)
        else:
            (written,) = await self.writes.write_in_order([new])
        await self.enforce_cap([namespace])
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
        ttl_seconds: object = None,
        expires_at: object = None,
        refresh_on_read: bool = False,
        default_ttl_seconds: Mapping[MemoryType, int] | None = None,
    ) -> NewMemory:
        """Validate one write for this service (400/413 on bad input), its expiry resolved:
        ``ttl_seconds`` or ``expires_at`` (ISO 8601), else the type's default TTL (from
        ``default_ttl_seconds``, the namespace's: :meth:`default_ttls`, else the settings')."""
        moment, ttl = self.expiry.resolve(
            memory_type,
            self.clock(),
            ttl_seconds=ttl_seconds,
            expires_at=expires_at,
            refresh_on_read=refresh_on_read,
            default_ttl_seconds=default_ttl_seconds,
        )
        return prepare(
            namespace,
            coord,
            payload,
            memory_type=memory_type,
            importance=importance,
            vector=vector,
            max_payload_bytes=self.max_payload_bytes,
            dim=self.embedder.dim,
            expires_at=moment,
            ttl_seconds=ttl,
            refresh_on_read=refresh_on_read,
        )

    async def store_many(self, news: Sequence[NewMemory]) -> list[Written]:
        """Write prepared memories in one transaction, in order with every other write."""
        written = await self.writes.write_in_order(news) if news else []
        await self.enforce_cap(sorted({new.namespace for new in news}))
        return written

    async def default_ttls(self, namespace: str) -> Mapping[MemoryType, int]:
        """Default TTLs by memory type of the namespace's writes: its own over the settings'."""
        own = await self.policies.of(namespace)
        if own is None or not own.default_ttl_seconds:
            return self.expiry.default_ttl_seconds
        return {**self.expiry.default_ttl_seconds, **own.default_ttl_seconds}

    async def memory_cap(self, namespace: str) -> int:
        """The namespace's own max_memories, else the settings' (0: no cap)."""
        own = await self.policies.of(namespace)
        if own is not None and own.max_memories is not None:
            return own.max_memories
        return self.max_memories

    async def enforce_cap(self, namespaces: Sequence[str]) -> int:
        """Evict the lowest effective importance of each namespace over its cap
        (:meth:`memory_cap`) through the delete path (store, cache, vector); how many were
        evicted.

        Only where the store orders by effective importance (PostgreSQL); pending reads are
        recorded first so the order sees them."""
        caps = {namespace: await self.memory_cap(namespace) for namespace in namespaces}
        if not any(cap > 0 for cap in caps.values()):
            return 0  # the common case, decided before the (slower) protocol check
        store = self.live.store
        if not isinstance(store, Decaying):
            return 0
        await self.reads.flush(store)
        evicted = 0
        for namespace, cap in caps.items():
            if cap <= 0:
                continue
            victims = await store.least_important(
                namespace,
                self.clock(),
                cap=cap,
                floor=self.decay.floor,
                half_lives=self.decay.half_life_seconds,
            )
            for coord in victims:
                receipt = await self.delete_memory(namespace, coord)
                if receipt.deleted:
                    evicted += 1
                    self.metrics.memories_evicted.inc()
        return evicted

    async def policy(self, namespace: str) -> EffectivePolicy:
        """The namespace's effective policy, read from the store (503 while it is away)."""
        own = await self.policies.read(namespace)
        return effective(namespace, own, self.expiry.default_ttl_seconds, self.max_memories)

    async def set_policy(
        self,
        namespace: str,
        *,
        default_ttl_seconds: Mapping[str, object] | None,
        max_memories: object,
        given: set[str],
    ) -> EffectivePolicy:
        """Change the ``given`` fields of the namespace's policy (None clears one; 400 out of
        bounds). A lower cap evicts at the namespace's next write."""
        changes = checked_changes(
            default_ttl_seconds,
            max_memories,
            given,
            max_ttl_seconds=self.expiry.max_ttl_seconds,
        )
        own = await self.policies.update(namespace, changes)
        return effective(namespace, own, self.expiry.default_ttl_seconds, self.max_memories)

    async def clear_policy(self, namespace: str) -> bool:
        """Clear the namespace's policy (the settings apply again); whether it had one."""
        return await self.policies.clear(namespace)

    async def get_memory_json(self, namespace: str, coord: str) -> bytes:
        """The live memory as JSON: from the cache, else from the store (filling the cache).

        JSON rather than an object: a cache hit is answered without decoding anything.
        """
        key = normalize_coord(coord)
        now = self.clock()
        cached = await self._cache_get(namespace, key)
        if cached.value is not None:  # never an expiring memory (they are not cached)
            self.reads.record(namespace, key, now)
            return cached.value
        memory = await self.live.store.get(namespace, key, now=now)
        if memory is None:
            raise MemoryNotFound(f"no memory at coordinate {key} in namespace {namespace!r}")
        self.reads.record(namespace, key, now)
        store = self.live.store
        if memory.refresh_on_read and isinstance(store, Expiring):
            moved = await store.refresh_expiry(namespace, key, now)
            if moved is not None:
                memory = dataclasses.replace(memory, expires_at=moved)
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
        history = await self.live.store.versions(
            namespace, key, after=after, limit=limit + 1, now=self.clock()
        )
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

    async def memory_as_of(self, namespace: str, coord: str, as_of: str) -> Memory:
        """The version current at ``as_of`` (ISO 8601; a future time reads now): 404 before
        the memory existed or once deleted by then, 503 without PostgreSQL (``history.py``)."""
        moment = history.parse_moment(as_of)
        return await history.read_as_of(self.live, namespace, normalize_coord(coord), moment)

    async def version_deletions(
        self, namespace: str, coord: str, page: Sequence[Memory], after: int
    ) -> dict[int, datetime]:
        """When a delete ended a version of ``page`` (earlier lives of a memory written again)."""
        store = self.live.store
        if not page or not isinstance(store, History):
            return {}
        found = await store.deletions(namespace, coord, after=after, limit=len(page))
        return {version: at for version, at in found.items() if version <= page[-1].version}

    async def export_stream(
        self, namespace: str | None, *, include_deleted: bool = False
    ) -> AsyncIterator[bytes]:
        """``somamemory export``'s file as NDJSON chunks (``interchange/streaming.py``)."""
        return await streaming.open_export(self.live, namespace, include_deleted=include_deleted)

    async def import_stream(
        self,
        chunks: AsyncIterator[bytes],
        *,
        permit: Callable[[str], object],
        into: str | None = None,
    ) -> streaming.Imported:
        """Import an export file as it arrives, through the write path (``interchange/``)."""
        return await streaming.import_stream(
            chunks,
            live=self.live,
            locks=self.locks,
            writes=self.writes,
            permit=permit,
            into=into,
            max_payload_bytes=self.max_payload_bytes,
            dim=self.embedder.dim,
        )

    async def delete_memory(self, namespace: str, coord: str) -> DeletionReceipt:
        """Delete a memory, its versions, its cache entry and its vector; idempotent.

        The receipt says where it is gone from already. The canonical delete is the one that
        counts (it also queues the vector's removal), so a cache or vector store that does not
        answer leaves the delete standing and says so instead of failing it.
        """
        key = normalize_coord(coord)
        async with self.locks.hold(f"{namespace}:{key}"):
            async with self.live.gate.passage():
                removed = await self.live.store.delete(namespace, key)
            cache_state = "none"
            cache = self.live.cache
            if cache is not None:
                try:  # a tombstone: an older write's value arriving late stays out
                    await cache.tombstone_many([(namespace, key, removed)])
                    cache_state = "done"
                except BackendUnavailable:
                    log.warning(
                        "cache entry of a deleted memory not dropped; it expires on its own"
                    )
                    cache_state = "unreachable"
            vector_done = await self.writes.unindex(namespace, key)
        return DeletionReceipt(
            coord=key,
            deleted=removed > 0,
            canonical="done" if removed else "absent",
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

    async def search_ranked(
        self,
        namespace: str,
        *,
        query: str | None = None,
        vector: Sequence[float] | None = None,
        top_k: int = 10,
        filters: dict[str, Any] | None = None,
        memory_type: str | Sequence[str] | None = None,
        consistency: Consistency | None = None,
        mode: str | None = None,
        rank: str | None = None,
    ) -> SearchResult:
        """The namespace's memories best matching the query, best first, in one of three modes.

        ``vector``: nearest by meaning (score: cosine similarity). ``keyword``: by the words of
        the payload, in PostgreSQL (score: summed rarity of the query terms a memory holds, see
        ``stores/postgres_keyword.py``). ``hybrid``, the default: both lists fused by reciprocal
        rank (``search_fusion.py``); it finds an exact id or code that embeddings miss and a
        paraphrase that shares no word, which each list alone does not (README, "Hybrid
        search", has the measurements). Without a query text (a ``vector`` only) the default is
        ``vector``. Where PostgreSQL is not in use (Redis-only and in-process modes), keyword
        search answers 503 and hybrid answers the vector list alone, saying so in ``mode``.
        ``ranks`` give each hit's rank in each list (hybrid: in the keyword list only while it
        takes part in the fusion, see ``search_fusion.py``).

        Payloads come from the canonical store, so a memory deleted or changed after its vector
        was written is never answered stale: a vector without its memory is skipped (an
        expired one too, swept or not).

        ``rank``: ``similarity`` (the default) keeps the mode's order; ``blended`` re-ranks the
        mode's ``candidate_depth(top_k)`` best by :meth:`_blend` (README, "Expiry and decay").
        """
        if not 1 <= top_k <= self.max_top_k:
            raise InvalidInput(f"top_k must be between 1 and {self.max_top_k} (SOMA_MAX_TOP_K)")
        if rank is not None and rank not in RANKINGS:
            raise InvalidInput(f"rank must be one of {', '.join(RANKINGS)}, not {rank!r}")
        blended = rank == "blended"
        wanted, top_k = top_k, candidate_depth(top_k) if blended else top_k
        text = query if query is not None and query.strip() else None
        chosen = self._search_mode(mode, text, vector)
        where = parse_filter(namespace, filters, memory_type)
        keywords = self.live.store if isinstance(self.live.store, KeywordSearch) else None
        if chosen == "keyword" and keywords is None:
            raise BackendUnavailable(
                "postgres",
                f"keyword search runs in PostgreSQL, which the service is not using now (mode "
                f"{self.live.mode}); search with mode 'vector'",
            )
        if chosen == "hybrid" and keywords is None:
            log.warning("hybrid search answered by vector alone: %s mode", self.live.mode)
            chosen = "vector"
        previous = self.live.previous  # read once: one search, one collection
        refusal = previous.refusal(vector) if previous is not None else None
        if refusal is not None and chosen == "hybrid":
            log.warning("hybrid search answered by keyword alone: %s", refusal)
            chosen = "keyword"
        elif refusal is not None and chosen == "vector":
            raise ReembeddingInProgress(refusal)
        if chosen == "keyword":
            assert keywords is not None and text is not None
            if where is None:
                return SearchResult(chosen, [])
            ranked = await self._keyword_ranked(keywords, text, where, top_k)
        else:
            embedding = await self._vector_for_query(text or "", vector, previous)
            if where is None:
                return SearchResult(chosen, [])
            try:
                ranked = await self._by_vector(
                    chosen, keywords, text, embedding, where, top_k, consistency, previous
                )
            except _PreviousGone:  # this replica has switched too: search the new collection
                embedding = await self._vector_for_query(text or "", vector, None)
                ranked = await self._by_vector(
                    chosen, keywords, text, embedding, where, top_k, consistency, None
                )
        hits = await self._with_memories(namespace, ranked, top_k)
        return SearchResult(chosen, self._blend(chosen, hits)[:wanted] if blended else hits)

    async def _by_vector(
        self,
        chosen: SearchMode,
        keywords: KeywordSearch | None,
        text: str | None,
        embedding: list[float],
        where: SearchFilter,
        top_k: int,
        consistency: Consistency | None,
        previous: PreviousIndex | None,
    ) -> list[Ranked]:
        if chosen == "vector":
            return await self._vector_ranked(embedding, where, top_k, consistency, previous)
        assert keywords is not None and text is not None
        return await self._hybrid_ranked(
            keywords, text, embedding, where, top_k, consistency, previous
        )

    def _blend(self, mode: SearchMode, hits: list[RankedHit]) -> list[RankedHit]:
        """``hits`` re-scored ``w_s * similarity + w_i * effective importance + w_r * recency``,
        best first (ties: the mode's order). Similarity: the cosine in vector mode; in keyword
        and hybrid modes the mode's score over the best candidate's (the best is 1)."""
        now = self.clock()
        best = max((hit.score for hit in hits), default=0.0)
        scored: list[RankedHit] = []
        for hit in hits:
            memory = hit.memory
            if mode == "vector":
                similarity = hit.similarity if hit.similarity is not None else hit.score
            else:
                similarity = hit.score / best if best > 0 else 0.0
            age = age_seconds(memory, now, self.reads.last(memory.namespace, memory.coord))
            score = self.decay.blended(similarity, memory, age)
            scored.append(dataclasses.replace(hit, score=score))
        return sorted(scored, key=lambda hit: -hit.score)

    async def _vector_ranked(
        self,
        embedding: list[float],
        where: SearchFilter,
        top_k: int,
        consistency: Consistency | None,
        previous: PreviousIndex | None = None,
    ) -> list[Ranked]:
        hits = await self._vector_hits(embedding, top_k, where, consistency, previous)
        return [
            (coord, score, {"vector": rank, "keyword": None}, score)
            for rank, (coord, score) in enumerate(hits, start=1)
        ]

    async def _keyword_ranked(
        self, keywords: KeywordSearch, text: str, where: SearchFilter, top_k: int
    ) -> list[Ranked]:
        found = await keywords.keyword_search(text, where=where, limit=top_k)
        return [
            (hit.coord, hit.score, {"vector": None, "keyword": rank}, None)
            for rank, hit in enumerate(found, start=1)
        ]

    async def _hybrid_ranked(
        self,
        keywords: KeywordSearch,
        text: str,
        embedding: list[float],
        where: SearchFilter,
        top_k: int,
        consistency: Consistency | None,
        previous: PreviousIndex | None = None,
    ) -> list[Ranked]:
        """Both lists, ``candidate_depth`` deep and fetched at once, fused (``search_fusion``)."""
        depth = candidate_depth(top_k)
        by_vector, by_keyword = await asyncio.gather(
            self._vector_hits(embedding, depth, where, consistency, previous),
            keywords.keyword_search(text, where=where, limit=depth),
        )
        fused = reciprocal_rank_fusion(
            {
                "vector": [(coord, 1.0) for coord, _ in by_vector],
                "keyword": [(h.coord, keyword_weight(h.coverage, h.code)) for h in by_keyword],
            }
        )
        cosine = dict(by_vector)
        return [(hit.coord, hit.score, hit.ranks, cosine.get(hit.coord)) for hit in fused]

    def _search_mode(
        self, mode: str | None, text: str | None, vector: Sequence[float] | None
    ) -> SearchMode:
        """The mode to search in: as asked (400 if unknown, or keyword/hybrid without text)."""
        chosen = next((known for known in SEARCH_MODES if known == mode), None)
        if mode is not None and chosen is None:
            raise InvalidInput(f"mode must be one of {', '.join(SEARCH_MODES)}, not {mode!r}")
        if text is None and vector is None:
            raise InvalidInput("give a non-empty 'query' text or a 'vector'")
        if chosen is None:
            return DEFAULT_MODE if text is not None else "vector"
        if chosen != "vector" and text is None:
            raise InvalidInput(f"mode {mode!r} needs a non-empty 'query' text")
        return chosen

    async def _vector_hits(
        self,
        embedding: list[float],
        top_k: int,
        where: SearchFilter,
        consistency: Consistency | None,
        previous: PreviousIndex | None = None,
    ) -> list[tuple[str, float]]:
        vectors = previous.vectors if previous is not None else self.vectors
        try:
            return await vectors.search(
                embedding, top_k=top_k, where=where, consistency=consistency
            )
        except (BackendUnavailable, BackendRefused) as exc:
            if previous is not None and await _gone(previous):
                raise _PreviousGone from exc
            failure = type(exc.__cause__ or exc).__name__  # never the server's words to the client
            raise BackendUnavailable(exc.backend, f"search failed: {failure}") from exc

    async def _with_memories(
        self,
        namespace: str,
        ranked: Sequence[Ranked],
        top_k: int,
    ) -> list[RankedHit]:
        """The first ``top_k`` of ``ranked`` whose memory is live, with the memory (read in
        slices of ``top_k``, so a vector whose memory is gone costs no payload reads)."""
        hits: list[RankedHit] = []
        start = 0
        while len(hits) < top_k and start < len(ranked):
            chunk = ranked[start : start + top_k]
            start += top_k
            memories = await self.live.store.get_many(
                namespace, [entry[0] for entry in chunk], now=self.clock()
            )
            hits += [
                RankedHit(memories[coord], score, ranks, similarity)
                for coord, score, ranks, similarity in chunk
                if coord in memories
            ]
        return hits[:top_k]

    async def expand_hits(
        self,
        namespace: str,
        hits: Sequence[tuple[Memory, float]],
        *,
        link_type: str | None = None,
        depth: int = 1,
    ) -> list[tuple[Memory, Expansion, float]]:
        """The memories one link out of a search's hits, none of them a hit, each once, at most
        as many as the hits: (memory, how it was reached, the score of the hit it came from)."""
        if depth != 1:
            raise InvalidInput("expand.depth must be 1: search expands its hits by one link")
        found = await self.graph.expand(
            namespace, [memory.coord for memory, _ in hits], link_type, limit=len(hits)
        )
        memories = await self.live.store.get_many(
            namespace, [hop.coord for hop in found], now=self.clock()
        )
        scores = {memory.coord: score for memory, score in hits}
        return [
            (memories[hop.coord], hop, scores[hop.via]) for hop in found if hop.coord in memories
        ]

    async def counts(self, namespace: str) -> tuple[TypeCounts, int | None]:
        """Live memories by type (canonical) and the vector count (None if Milvus is down)."""
        counts = await self.live.store.counts(namespace, now=self.clock())
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

    async def _vector_for_query(
        self, text: str, vector: Sequence[float] | None, previous: PreviousIndex | None = None
    ) -> list[float]:
        """The query's vector for the collection searched: ``previous``'s while it serves."""
        embedder: Embedder | None = self.embedder
        dim = self.embedder.dim
        if previous is not None:
            embedder, dim = previous.embedder, previous.dim
        if vector is not None:
            return check_vector(vector, dim)
        if embedder is None:
            assert previous is not None
            raise ReembeddingInProgress(previous.refusal(None) or "re-embedding")
        return (await embedder.embed([text]))[0]

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
        if cache is None or memory.expires_at is not None:  # expiring memories are not cached
            return
        try:
            await cache.fill(memory, lease)
        except BackendUnavailable:
            log.warning("cache fill failed", exc_info=True)


async def _gone(previous: PreviousIndex) -> bool:
    """Whether ``previous`` failed because another replica switched and dropped it."""
    try:
        return await previous.gone()
    except (BackendUnavailable, BackendRefused):
        return False
