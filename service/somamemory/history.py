"""Time travel: reads of the version current at a moment, and the purge of deleted histories.

A delete keeps the memory's versions in PostgreSQL, the last one stamped with the delete
(``stores/postgres_history.py``), for ``SOMA_DELETED_HISTORY_RETENTION_SECONDS``; then
:class:`HistoryPurge` removes them. Only PostgreSQL keeps this history: in Redis-only and
in-process modes a read ``as_of`` a moment answers 503 and says so.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from .errors import BackendUnavailable, InvalidInput, MemoryNotFound
from .live import LiveStores
from .models import Memory
from .stores.protocols import History

log = logging.getLogger(__name__)

PURGE_BATCH = 1000  # deleted histories per statement
PURGE_BATCHES_PER_PASS = 10  # a pass stops after this many full batches, the next goes on
PURGE_INTERVAL_SECONDS = 60.0


def parse_moment(text: str) -> datetime:
    """An ISO 8601 time with a zone (``2026-12-06T10:00:00Z``); 400 otherwise."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise InvalidInput(
            f"as_of must be an ISO 8601 time with a zone, like 2026-12-06T10:00:00Z, not {text!r}"
        ) from exc
    if moment.tzinfo is None:
        raise InvalidInput(f"as_of {text!r} has no time zone: add Z or an offset like +02:00")
    return moment


def history_of(live: LiveStores) -> History:
    """The store in use, if it keeps history (PostgreSQL); else 503 saying why."""
    store = live.store
    if not isinstance(store, History):
        raise BackendUnavailable(
            "postgres",
            f"reads as_of a time use the history kept in PostgreSQL, which the service is not "
            f"using now (mode {live.mode}); read without as_of",
        )
    return store


async def read_as_of(live: LiveStores, namespace: str, coord: str, moment: datetime) -> Memory:
    """The version of the memory current at ``moment`` (a future moment: now)."""
    found = await history_of(live).as_of(namespace, coord, moment)
    if found is None:
        raise MemoryNotFound(
            f"no memory at coordinate {coord} in namespace {namespace!r} as of "
            f"{moment.astimezone(UTC).isoformat()}"
        )
    return found


class HistoryPurge:
    """Removes deleted histories older than the retention period, a bounded amount per pass.

    Safe with many replicas: each statement takes deletions no other one holds (SKIP LOCKED).
    ``clock`` is injectable so tests move time instead of waiting.
    """

    def __init__(
        self,
        live: LiveStores,
        *,
        retention_seconds: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._live = live
        self._retention = timedelta(seconds=retention_seconds)
        self._clock = clock

    async def run_once(self) -> int:
        """One pass: purge what is due, at most PURGE_BATCHES_PER_PASS batches; return how many
        deleted histories were removed (0 in a mode without PostgreSQL)."""
        store = self._live.store
        if not isinstance(store, History):
            return 0
        cutoff = self._clock() - self._retention
        purged = 0
        for _ in range(PURGE_BATCHES_PER_PASS):
            deletions, versions = await store.purge_deleted(cutoff, PURGE_BATCH)
            purged += deletions
            if deletions:
                log.info("purged %d deleted histories (%d versions)", deletions, versions)
            if deletions < PURGE_BATCH:
                break
        return purged

    async def run_forever(self, interval: float = PURGE_INTERVAL_SECONDS) -> None:
        """Purge until cancelled, every ``interval`` seconds."""
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("purge of deleted histories failed; retrying later", exc_info=True)
            await asyncio.sleep(interval)
