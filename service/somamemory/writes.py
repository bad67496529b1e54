"""The write path: canonical commit first, then the cache, then the vector, then the outbox.

One function writes a whole batch; a single ``POST /memories``, the group-commit batcher and
``POST /memories/batch`` all go through it. A write is acknowledged only after the PostgreSQL
commit, which also enqueued its vector in the outbox: if the vector write fails (or the process
dies first), the reconciler finishes the job.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from .coords import normalize_coord
from .embeddings import Embedder, text_of
from .errors import BackendRefused, BackendUnavailable, InvalidInput, cause_text
from .live import LiveStores
from .metrics import Metrics
from .models import Memory, MemoryType, NewMemory
from .payloads import validate_payload
from .stores import Locks, VectorStore
from .stores.outbox import PendingVector

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Written:
    memory: Memory
    indexed: bool


def prepare(
    namespace: str,
    coord: str,
    payload: dict[str, Any],
    *,
    memory_type: MemoryType,
    importance: float,
    vector: Sequence[float] | None,
    max_payload_bytes: int,
    dim: int,
    expires_at: datetime | None = None,
    ttl_seconds: int | None = None,
    refresh_on_read: bool = False,
) -> NewMemory:
    """Validate one write (400/413 on bad input) and normalise its coordinate. The expiry
    comes resolved (``expiry.ExpiryPolicy.resolve``)."""
    key = normalize_coord(coord)
    validate_payload(payload, max_payload_bytes)
    if not math.isfinite(importance):
        raise InvalidInput("importance must be a finite number")
    if vector is not None:
        vector = check_vector(vector, dim)
    return NewMemory(
        namespace,
        key,
        memory_type,
        payload,
        importance,
        vector,
        expires_at=expires_at,
        ttl_seconds=ttl_seconds,
        refresh_on_read=refresh_on_read,
    )


FLOAT32_MAX = 3.4028234663852886e38


def check_vector(vector: Sequence[float], dim: int) -> list[float]:
    """``vector`` at unit length, or 400 (wrong length, a value not finite or beyond float32,
    all zeros). Checked and scaled in NumPy: a 384-float vector in Python loops held the event
    loop for ~0.1 ms per write; the values are the same (the norm is still an exact sum)."""
    if len(vector) != dim:
        raise InvalidInput(
            f"vector has {len(vector)} dimensions; this service stores {dim}-dimensional vectors"
        )
    try:
        values = np.asarray(vector, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInput("vector values must be numbers") from exc
    if values.ndim != 1 or not (np.isfinite(values).all() and np.abs(values).max() <= FLOAT32_MAX):
        raise InvalidInput(f"vector values must be finite and within +-{FLOAT32_MAX:.4g} (float32)")
    norm = math.sqrt(math.fsum((values * values).tolist()))
    if norm == 0.0:
        raise InvalidInput("vector must not be all zeros (cosine similarity needs a length)")
    # unit length: cosine is unchanged, and float32 arithmetic in the vector store cannot overflow
    return (values / norm).tolist()  # type: ignore[no-any-return]


class WritePath:
    """Writes batches of prepared memories across the stores, in commit order."""

    def __init__(
        self,
        *,
        live: LiveStores,
        vectors: VectorStore,
        embedder: Embedder,
        metrics: Metrics,
        locks: Locks,
    ) -> None:
        self.live = live  # the store, cache and outbox in use (failover switches them)
        self.locks = locks
        self.vectors = vectors
        self.embedder = embedder
        self.metrics = metrics
        # vectors written but not yet durable (milvus-lite keeps them in memory until a flush):
        # their outbox entries are cleared only after the next flush
        self._unflushed: list[PendingVector] = []
        self._flushing = asyncio.Lock()  # see flush

    async def write_in_order(self, news: Sequence[NewMemory]) -> list[Written]:
        """``write`` holding the lock of every coordinate involved (all at once).

        Single writes, group commits and ``/memories/batch`` all come through here, on every
        replica, so two writes to one coordinate commit and index in the same order: the
        vector that stays is the one of the last commit.
        """
        embeddings = await self.embed(news)  # the slow part, outside the locks
        keys = [f"{new.namespace}:{new.coord}" for new in news]
        async with self.locks.hold_many(keys):
            return await self._commit_and_index(news, embeddings)

    async def write(self, news: Sequence[NewMemory]) -> list[Written]:
        """Commit all of ``news`` in one transaction (in order), then index them."""
        return await self._commit_and_index(news, await self.embed(news))

    async def _commit_and_index(
        self, news: Sequence[NewMemory], embeddings: list[list[float]]
    ) -> list[Written]:
        async with self.live.gate.passage():
            memories = await self.live.store.put_many(news)
        await self._cache_set(memories)
        latest: dict[tuple[str, str], tuple[Memory, list[float]]] = {}
        for memory, embedding in zip(memories, embeddings, strict=True):
            latest[(memory.namespace, memory.coord)] = (memory, embedding)
        indexed = await self.index(list(latest.values()))
        return [Written(memory, indexed) for memory in memories]

    async def embed(self, news: Sequence[NewMemory]) -> list[list[float]]:
        """Each memory's vector: its own, or the embedder's (one call for the whole batch)."""
        missing = [i for i, new in enumerate(news) if new.vector is None]
        computed = await self.embedder.embed([text_of(news[i].payload) for i in missing])
        vectors: list[list[float] | None] = [new.vector for new in news]
        for i, vector in zip(missing, computed, strict=True):
            vectors[i] = vector
        return [v for v in vectors if v is not None]

    async def index(self, items: Sequence[tuple[Memory, list[float]]]) -> bool:
        """Write the vectors and clear their outbox entries; False leaves them to the reconciler."""
        pending: list[PendingVector] = [(m.namespace, m.coord, m.version) for m, _ in items]
        try:
            await self.vectors.upsert(items)
        except (BackendUnavailable, BackendRefused) as exc:
            log.warning("vector write failed; the reconciler will retry: %s", exc)
            self.metrics.vector_write_failures.inc()
            await self._outbox_call(self.live.outbox.failed(pending, cause_text(exc)))
            return False
        await self.settle(pending)
        return True

    async def unindex(self, namespace: str, coord: str) -> bool:
        """Remove a deleted memory's vector; False leaves it to the reconciler."""
        try:
            await self.vectors.delete(namespace, [coord])
        except (BackendUnavailable, BackendRefused) as exc:
            log.warning("vector delete failed; the reconciler will retry: %s", exc)
            self.metrics.vector_write_failures.inc()
            return False
        await self.settle([(namespace, coord, 0)])
        return True

    async def settle(self, items: Sequence[PendingVector], *, flush_now: bool = False) -> None:
        """Clear outbox entries whose vectors were written, once those writes are durable."""
        if self.vectors.durable_writes:
            await self._outbox_call(self.live.outbox.done(items))
        elif flush_now:
            await self.vectors.flush()
            await self._outbox_call(self.live.outbox.done(items))
        else:
            self._unflushed.extend(items)

    async def flush(self) -> None:
        """Make written vectors durable and clear their outbox entries.

        One flush at a time: the final flush of a shutdown waits for a periodic one in progress
        rather than returning while that one's entries are still owed (and its task is about to
        be cancelled). A flush cancelled or failed puts its entries back.
        """
        async with self._flushing:
            settled, self._unflushed = self._unflushed, []
            try:
                await self.vectors.flush()
            except BaseException:
                self._unflushed[:0] = settled  # entries stay owed; the next round tries again
                raise
            await self._outbox_call(self.live.outbox.done(settled))

    async def maintain(self, interval: float) -> None:
        """Run forever: every ``interval`` seconds, flush vectors written since the last time."""
        while True:
            await asyncio.sleep(interval)
            if self._unflushed or self.vectors.dirty:
                try:
                    await self.flush()
                except Exception:
                    log.warning("vector flush failed; retrying next round", exc_info=True)

    async def _outbox_call(self, call: Any) -> None:
        try:
            await call
        except BackendUnavailable:  # the entry stays; the reconciler settles it (idempotently)
            log.warning("outbox update failed", exc_info=True)

    async def _cache_set(self, memories: Sequence[Memory]) -> None:
        """One write refreshes its entry (a read soon after hits); a batch drops its entries in
        one command instead of sending every payload to the cache, leaving tombstones just
        below the versions written, so an older value racing in (a writer under the other
        lock kind while Redis comes back) stays out and a read of these versions fills."""
        cache = self.live.cache
        if cache is None:
            return
        try:
            # memories that expire are not cached: the cache could not tell when they expire
            # by the service's clock, so their reads go to the store (which filters them)
            if len(memories) == 1 and memories[0].expires_at is None:
                await cache.set_many(memories)
            else:
                await cache.tombstone_many(
                    [(m.namespace, m.coord, m.version - 1) for m in memories]
                )
        except BackendUnavailable:
            log.warning("cache update failed; dropping the entries", exc_info=True)
            try:
                for memory in memories:
                    await cache.invalidate(memory.namespace, memory.coord)
            except BackendUnavailable:
                log.error("cache entries may be stale until their TTL", exc_info=True)
