"""Importance that decays, recency, the blended ranking, and the batched record of reads.

Effective importance (README, "Expiry and decay")::

    effective = max(floor, importance * 0.5 ** (age / half_life[memory_type]))

with ``age`` the seconds since the memory was last read or written. Blended ranking::

    blended = w_s * similarity + w_i * effective + w_r * 0.5 ** (age / recency_half_life)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from .models import Memory, MemoryType
from .stores.protocols import Decaying

log = logging.getLogger(__name__)

DEFAULT_HALF_LIVES: Mapping[MemoryType, float] = {
    "episodic": 7 * 86_400.0,
    "semantic": 90 * 86_400.0,
}
MAX_PENDING_READS = 100_000  # reads waiting for a flush; beyond, new ones are not recorded


@dataclass(frozen=True, slots=True)
class DecayPolicy:
    """Half-lives by memory type, the floor, and the blended ranking's weights."""

    half_life_seconds: Mapping[MemoryType, float] = field(
        default_factory=lambda: DEFAULT_HALF_LIVES
    )
    floor: float = 0.0
    weight_similarity: float = 0.7
    weight_importance: float = 0.2
    weight_recency: float = 0.1
    recency_half_life_seconds: float = 86_400.0

    def effective_importance(self, memory: Memory, age: float) -> float:
        """``max(floor, importance * 0.5 ** (age / half-life))`` for the memory's type."""
        half_life = self.half_life_seconds[memory.memory_type]
        return max(self.floor, memory.importance * 0.5 ** (age / half_life))

    def recency(self, age: float) -> float:
        """1 for a memory read or written just now, halving every recency half-life."""
        return float(0.5 ** (age / self.recency_half_life_seconds))

    def blended(self, similarity: float, memory: Memory, age: float) -> float:
        """The blended score of a memory of this ``similarity`` and ``age``."""
        return (
            self.weight_similarity * similarity
            + self.weight_importance * self.effective_importance(memory, age)
            + self.weight_recency * self.recency(age)
        )


def age_seconds(memory: Memory, now: datetime, last_read: datetime | None = None) -> float:
    """Seconds since the memory was last written or read (never negative)."""
    moments = [memory.updated_at, memory.accessed_at, last_read]
    latest = max(moment for moment in moments if moment is not None)
    return max(0.0, (now - latest).total_seconds())


class ReadLog:
    """Reads not yet written to the store, keyed by memory: a GET costs a dict assignment and
    the store gets one ``UPDATE ... FROM unnest(...)`` per flush (every
    ``SOMA_ACCESS_FLUSH_SECONDS``), however many reads there were."""

    def __init__(self, max_pending: int = MAX_PENDING_READS) -> None:
        self._pending: dict[tuple[str, str], datetime] = {}
        self._max = max_pending

    def record(self, namespace: str, coord: str, at: datetime) -> None:
        key = (namespace, coord)
        if key in self._pending or len(self._pending) < self._max:
            self._pending[key] = at

    def last(self, namespace: str, coord: str) -> datetime | None:
        """The latest read not yet flushed, if any."""
        return self._pending.get((namespace, coord))

    async def flush(self, store: object) -> int:
        """Write the pending reads to ``store`` (if it records reads); how many were written."""
        if not self._pending or not isinstance(store, Decaying):
            return 0
        taken, self._pending = self._pending, {}
        try:
            await store.touch([(ns, coord, at) for (ns, coord), at in taken.items()])
        except Exception:
            for key, at in taken.items():  # kept for the next flush, newer reads first
                self._pending.setdefault(key, at)
            raise
        return len(taken)

    async def run_forever(self, store_of: object, interval: float) -> None:
        """Flush every ``interval`` seconds; ``store_of()`` is the store in use now."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.flush(store_of() if callable(store_of) else store_of)
            except Exception:
                log.warning("recording reads failed; retrying next round", exc_info=True)
