"""The reconciler: makes the vector store agree with PostgreSQL, from the outbox.

Each round takes the oldest entries of ``pending_vectors``, reads the memories' current state,
writes or removes their vectors, and clears the entries it settled (re-queueing any whose memory
moved on meanwhile). It runs at startup (repairing what a crash left behind) and then every
``interval`` seconds, backing off while the vector store is down.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable

from .embeddings import Embedder, text_of
from .errors import BackendRefused, cause_text
from .live import LiveStores
from .metrics import Metrics
from .models import Memory
from .stores import VectorStore
from .stores.outbox import PendingVector

log = logging.getLogger(__name__)
MAX_BACKOFF_SECONDS = 30.0


class Reconciler:
    """Drains the outbox into the vector store."""

    def __init__(
        self,
        *,
        live: LiveStores,
        vectors: VectorStore,
        embedder: Embedder,
        metrics: Metrics,
        settle: Callable[..., Awaitable[None]],
        grace_seconds: float = 5.0,
        batch_size: int = 500,
    ) -> None:
        self._grace = grace_seconds
        self._settle_written = settle
        self._live = live  # the store and outbox in use (failover switches them)
        self._vectors = vectors
        self._embedder = embedder
        self._metrics = metrics
        self._batch_size = batch_size

    async def run_once(self) -> int:
        """Settle one batch of the outbox; return how many entries it handled.

        Namespaces are settled one after the other, each on its own: entries the vector store
        refuses are isolated and backed off alone (see ``_settle``), so one tenant's bad entry
        never holds back another's backlog. Only an unreachable vector store ends the round.
        """
        due = await self._live.outbox.due(self._batch_size, self._grace)
        by_namespace: dict[str, list[PendingVector]] = defaultdict(list)
        for entry in due:
            by_namespace[entry[0]].append(entry)
        for namespace, entries in by_namespace.items():
            await self._settle(namespace, entries)
        self._metrics.reconcile_backlog.set(await self._live.outbox.backlog())
        self._metrics.reconcile_parked.set((await self._live.outbox.parked(examples=0)).count)
        return len(due)

    async def _settle(self, namespace: str, entries: list[PendingVector]) -> None:
        coords = [coord for _, coord, _ in entries]
        memories = await self._live.store.get_many(namespace, coords, with_vectors=True)
        present = list(memories.values())
        absent = [coord for _, coord, _ in entries if coord not in memories]
        written = await self._write(present)
        if absent:
            await self._vectors.delete(namespace, absent)  # a failure here is an outage
        settled = [(namespace, m.coord, m.version) for m in written]
        settled += [(namespace, coord, 0) for coord in absent]
        await self._settle_written(settled, flush_now=True)
        # entries whose version moved on stay queued (done() only clears exact versions)

    async def _write(self, memories: list[Memory]) -> list[Memory]:
        """Upsert the memories' vectors; return the memories whose vectors were written."""
        if not memories:
            return []
        vectors = await self._vectors_of(memories)  # an embedder failure is an outage: raise
        return await self._upsert_isolating(list(zip(memories, vectors, strict=True)))

    async def _upsert_isolating(self, items: list[tuple[Memory, list[float]]]) -> list[Memory]:
        """Upsert; when a batch is refused (the store says so, or it fails while the store
        answers a ping), halve it until each refused entry stands alone, and mark that entry
        failed (it backs off, and is parked after a few attempts). When the store does not
        answer, raise."""
        try:
            await self._vectors.upsert(items)
            return [memory for memory, _ in items]
        except Exception as exc:
            if not isinstance(exc, BackendRefused) and not await self._vector_store_answers():
                raise
            if len(items) == 1:
                memory = items[0][0]
                log.warning(
                    "vector refused; backing off",
                    extra={"namespace": memory.namespace, "coord": memory.coord},
                )
                entry = (memory.namespace, memory.coord, memory.version)
                await self._live.outbox.failed([entry], cause_text(exc)[:1000])
                return []
        half = len(items) // 2
        first = await self._upsert_isolating(items[:half])
        return first + await self._upsert_isolating(items[half:])

    async def _vector_store_answers(self) -> bool:
        try:
            await self._vectors.ping()
        except Exception:
            return False
        return True

    async def _vectors_of(self, memories: list[Memory]) -> list[list[float]]:
        """The client's own vector where it gave one, else the embedder's (one call)."""
        missing = [m for m in memories if m.vector is None]
        computed = iter(await self._embedder.embed([text_of(m.payload) for m in missing]))
        return [m.vector if m.vector is not None else next(computed) for m in memories]

    async def run_forever(self, interval: float) -> None:
        """Reconcile until cancelled: drain at once, then every ``interval`` seconds."""
        delay = interval
        while True:
            try:
                while await self.run_once() >= self._batch_size:
                    pass  # a full batch: more is waiting
                delay = interval
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("reconcile round failed; retrying in %.1fs", delay, exc_info=True)
                delay = min(delay * 2, MAX_BACKOFF_SECONDS)
            await asyncio.sleep(delay)
