"""Import batches: how histories are grouped, and how a batch is written (CLI and HTTP alike).

A batch holds at most BATCH_MEMORIES memories and about BATCH_BYTES of payload JSON, each memory
once. It is written in one PostgreSQL statement under the memories' locks (in order with the
service's own writes), then its vectors are computed and written through the write path.
Links come after the memories they join: a batch of up to BATCH_LINKS links is written once
every memory read before it is (one statement, a link with a missing end skipped).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from ..live import LiveStores
from ..models import NewMemory
from ..stores import Locks
from ..stores.postgres_transfer import LinkRecord, MemoryHistory, PostgresTransfer
from ..writes import WritePath

BATCH_MEMORIES = 500
BATCH_BYTES = 16 * 1_048_576  # of payload JSON, so large memories make small batches
BATCH_LINKS = 2000

log = logging.getLogger(__name__)


@dataclass
class LinkBatch:
    """Links to write together, after every memory read before them."""

    links: list[LinkRecord] = field(default_factory=list)


Batch = list[MemoryHistory] | LinkBatch


class Batches:
    """Groups histories into batches as they come: :meth:`push` answers a full batch to write."""

    def __init__(self) -> None:
        self._batch: list[MemoryHistory] = []
        self._keys: set[tuple[str, str]] = set()
        self._size = 0

    def push(self, history: MemoryHistory) -> list[MemoryHistory] | None:
        """Add ``history``; the batch it closed, if adding it had to start a new one."""
        key = (history.namespace, history.coord)
        done = None
        if self._batch and (
            len(self._batch) >= BATCH_MEMORIES or self._size >= BATCH_BYTES or key in self._keys
        ):
            done = self.rest()
        self._batch.append(history)
        self._keys.add(key)
        self._size += sum(len(json.dumps(v.payload)) for v in history.versions)
        return done

    def rest(self) -> list[MemoryHistory]:
        """The batch being filled (maybe empty), handed over; a new one starts."""
        done, self._batch, self._keys, self._size = self._batch, [], set(), 0
        return done


class Grouping:
    """Memories and links as they come, in the batches to write, in the order to write them."""

    def __init__(self) -> None:
        self._memories = Batches()
        self._links = LinkBatch()

    def push(self, record: MemoryHistory | LinkRecord) -> list[Batch]:
        """Add ``record``; the batches it completed, to write now in this order."""
        if isinstance(record, MemoryHistory):
            done = self._memories.push(record)
            return [done] if done else []
        self._links.links.append(record)
        return self.rest() if len(self._links.links) >= BATCH_LINKS else []

    def rest(self) -> list[Batch]:
        """Whatever is pending: the memories first, then the links that may join them."""
        done: list[Batch] = []
        if memories := self._memories.rest():
            done.append(memories)
        if self._links.links:
            done.append(self._links)
            self._links = LinkBatch()
        return done


def grouped(records: Iterable[MemoryHistory | LinkRecord]) -> Iterator[Batch]:
    """``records`` as the batches of :class:`Grouping`."""
    grouping = Grouping()
    for record in records:
        yield from grouping.push(record)
    yield from grouping.rest()


async def write_links(transfer: PostgresTransfer, batch: LinkBatch, *, live: LiveStores) -> int:
    """Write one batch of links; return how many are new here (one with a missing end is left
    out: the sweeper or a delete here took it since)."""
    async with live.gate.passage():
        added, skipped = await transfer.import_links(batch.links)
    if skipped:
        log.warning("import: %d links skipped, a memory they join is not here", skipped)
    return added


async def write_batch(
    transfer: PostgresTransfer,
    batch: list[MemoryHistory],
    *,
    live: LiveStores,
    locks: Locks,
    writes: WritePath,
) -> int:
    """Write one batch and the vectors of the memories that moved; return how many moved."""
    keys = [f"{h.namespace}:{h.coord}" for h in batch]
    async with locks.hold_many(keys):  # in order with the service's writes
        async with live.gate.passage():
            moved = await transfer.import_histories(batch)
        if live.cache is not None and moved:
            await live.cache.invalidate_many([(m.namespace, m.coord) for m in moved])
        if moved:
            news = [
                NewMemory(m.namespace, m.coord, m.memory_type, m.payload, m.importance, m.vector)
                for m in moved
            ]
            embeddings = await writes.embed(news)
            # a vector store that fails leaves the entries in the outbox for the reconciler
            await writes.index(list(zip(moved, embeddings, strict=True)))
    return len(moved)
