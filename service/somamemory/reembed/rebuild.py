"""The rebuild: every live memory through the outbox into the new collection, then one switch.

At its start the rebuild marks PostgreSQL's clock and enqueues every live memory (after a
restart, only namespaces whose counts differ between PostgreSQL and the new collection); the
reconciler drains the outbox into the new collection as it always does. The new collection is
complete when no outbox entry from before the mark is still owed and no namespace has fewer
vectors than live memories (beyond the entries still in the outbox). Parked entries
are not waited for: they are counted in ``/health`` and logged at the switch, and their memories'
next write retries them. Then search switches in one assignment and the old collection is
dropped. A replica that finds the old collection gone (another replica switched) switches too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from ..embeddings import Embedder
from ..embeddings.base import EmbedderInfo
from ..live import LiveStores, PreviousIndex
from ..metrics import Metrics
from ..stores import VectorStore
from ..stores.collection_identity import Collections, shown
from ..stores.postgres_reembed import Owed
from .plan import CollectionPlan
from .previous import embedder_for

log = logging.getLogger(__name__)
MAX_BACKOFF_SECONDS = 30.0
# Checks in a row with nothing owed but counts that differ before the differing namespaces are
# enqueued again (a replica still on the old embedder settled some of their entries elsewhere).
RECHECKS = 10
State = Literal["waiting", "building", "switched"]


class RebuildReads(Protocol):
    """What the rebuild reads and enqueues in PostgreSQL (``stores/postgres_reembed.py``)."""

    async def clock(self) -> datetime: ...

    async def enqueue(self, namespace: str | None = None) -> int: ...

    async def owed_before(self, mark: datetime) -> Owed: ...

    async def live_counts(self) -> dict[str, int]: ...

    async def outbox_counts(self) -> dict[str, int]: ...


@dataclass(frozen=True, slots=True)
class Progress:
    """The rebuild as ``/health`` shows it."""

    source: EmbedderInfo | None  # what filled the previous collection (None: unknown)
    target: EmbedderInfo
    state: State
    total: int  # memories enqueued for the new collection
    remaining: int  # of them still owed
    parked: int  # of them parked (not waited for)

    @property
    def done(self) -> int:
        return max(0, self.total - self.remaining)


class Rebuild:
    """Builds the configured embedder's collection while search answers from the previous one."""

    def __init__(
        self,
        *,
        live: LiveStores,
        collections: Collections,
        plan: CollectionPlan,
        target: VectorStore,
        target_identity: EmbedderInfo,
        previous: VectorStore,
        reads: RebuildReads | None,
        metrics: Metrics,
        check_seconds: float = 1.0,
        log_seconds: float = 10.0,
    ) -> None:
        assert plan.previous is not None
        self._live = live
        self._collections = collections
        self._plan = plan
        self._old = plan.previous
        self._target = target
        self._identity = target_identity
        self._previous = previous
        self._reads = reads  # None: PostgreSQL was away at startup; the rebuild waits for it
        self._metrics = metrics
        self._check = check_seconds
        self._log_every = log_seconds
        self._state: State = "waiting"
        self._mark: datetime | None = None
        self._total = self._remaining = self._parked = 0
        self._logged = 0.0
        self._disagreements = 0

    def progress(self) -> Progress:
        return Progress(
            self._old.identity,
            self._identity,
            self._state,
            self._total,
            self._remaining,
            self._parked,
        )

    def _in_words(self) -> str:
        if self._state != "building":
            return "not started yet"
        shown_progress = self.progress()
        return f"{shown_progress.done} of {shown_progress.total} memories re-embedded"

    async def start(self, configured: Embedder) -> None:
        """Make search answer from the previous collection; call before serving."""
        embedder, why_not = await embedder_for(self._old.identity, configured)
        self._live.previous = PreviousIndex(
            vectors=self._previous,
            dim=self._old.dim,
            identity=self._old.identity,
            target=self._identity,
            embedder=embedder,
            why_not=why_not,
            progress=self._in_words,
            gone=self.gone,
        )
        log.info(
            "re-embedding: the embedder changed from %s to %s; building collection %s from "
            "PostgreSQL, searches answer from %s until it is complete%s",
            shown(self._old.identity),
            shown(self._identity),
            self._plan.target,
            self._old.name,
            "" if embedder is not None else f" (vector search answers 503: {why_not})",
        )

    async def run(self) -> None:
        """Check progress every ``check_seconds`` until the switch; retry after failures."""
        delay = self._check
        while self._state != "switched":
            try:
                await self._step()
                delay = self._check
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("re-embedding check failed; retrying in %.1fs", delay, exc_info=True)
                delay = min(delay * 2, MAX_BACKOFF_SECONDS)
            if self._state == "switched":
                return
            await asyncio.sleep(delay)

    async def gone(self) -> bool:
        """Whether the previous collection is gone; if so, switch (another replica did)."""
        if self._state == "switched":
            return True
        if await self._collections.exists(self._old.name):
            return False
        await self._switch(dropped_elsewhere=True)
        return True

    async def _step(self) -> None:
        if await self.gone():
            return
        reads = self._reads
        if reads is None:
            return
        if self._mark is None:
            mark = await reads.clock()
            self._total = await self._enqueue(reads)
            self._mark, self._state = mark, "building"
            self._metrics.reembed_total.set(self._total)
            log.info("re-embedding: %d memories enqueued for %s", self._total, self._plan.target)
        owed = await reads.owed_before(self._mark)
        self._remaining, self._parked = owed.owed, owed.parked
        self._metrics.reembed_remaining.set(owed.owed)
        if owed.owed == 0:
            differing = await self._differing(reads)
            if not differing:
                await self._switch()
                return
            await self._recheck(reads, differing)
        if time.monotonic() - self._logged >= self._log_every:
            self._logged = time.monotonic()
            log.info(
                "re-embedding: %s into %s (%d parked)",
                self._in_words(),
                self._plan.target,
                owed.parked,
            )

    async def _enqueue(self, reads: RebuildReads) -> int:
        """Every live memory; after a restart, only namespaces the new collection lacks."""
        if self._plan.target_rows == 0:
            return await reads.enqueue(None)
        enqueued = 0
        for namespace, live in (await reads.live_counts()).items():
            if await self._target.count(namespace) != live:
                enqueued += await reads.enqueue(namespace)
        return enqueued

    async def _differing(self, reads: RebuildReads) -> list[str]:
        """Namespaces with fewer vectors than live memories, beyond their outbox entries (writes
        in flight, parked ones). More vectors lose nothing: a vector whose memory is gone is
        never answered."""
        live = await reads.live_counts()
        owed = await reads.outbox_counts()
        differing: list[str] = []
        for namespace in sorted(live.keys() | owed.keys()):
            vectors = await self._target.count(namespace)
            if live.get(namespace, 0) - vectors > owed.get(namespace, 0):
                differing.append(namespace)
        return differing

    async def _recheck(self, reads: RebuildReads, differing: list[str]) -> None:
        """Counts read while writes land can differ for a moment; ones that stay apart for
        ``RECHECKS`` checks are enqueued again, under a new mark."""
        self._disagreements += 1
        if self._disagreements < RECHECKS:
            return
        self._disagreements = 0
        mark = await reads.clock()
        enqueued = 0
        for namespace in differing:
            enqueued += await reads.enqueue(namespace)
        self._mark, self._total = mark, self._total + enqueued
        self._metrics.reembed_total.set(self._total)
        log.warning(
            "re-embedding: vector counts of %d namespace(s) stay apart from PostgreSQL's; "
            "%d memories enqueued again",
            len(differing),
            enqueued,
        )

    async def _switch(self, *, dropped_elsewhere: bool = False) -> None:
        if self._state == "switched":
            return
        # one assignment, no await before it: every search from here on reads the new collection
        self._live.previous = None
        self._state, self._remaining = "switched", 0
        self._metrics.reembed_switches.inc()
        self._metrics.reembed_remaining.set(0)
        log.info(
            "re-embedding complete: searches answer from %s (%s); %s",
            self._plan.target,
            shown(self._identity),
            "another replica switched first and dropped the previous collection"
            if dropped_elsewhere
            else f"dropping {self._old.name}",
        )
        if self._parked:
            log.warning(
                "re-embedding: %d memories are parked without a vector in the new collection "
                "(see /health parked_examples); writing them again retries them",
                self._parked,
            )
        for name in (self._old.name, *self._plan.leftovers):
            try:
                if await self._collections.exists(name):
                    await self._collections.drop(name)
                    log.info("re-embedding: dropped collection %s", name)
            except Exception:
                log.warning("could not drop collection %s; drop it by hand", name, exc_info=True)
