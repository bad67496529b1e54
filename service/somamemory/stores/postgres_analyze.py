"""Planner statistics after bulk writes: ``ANALYZE memories`` once enough rows were written.

Until ``memories`` is analysed, the planner guesses it holds a handful of rows and keyword search
(``postgres_keyword.py``) recomputes every row's text vector for each query term instead of
probing the GIN index: hundreds of milliseconds a search instead of a few, until autovacuum gets
to the table (a minute or more after a bulk load or an import). So the writers count the rows they
write and, past a threshold like autovacuum's own (:data:`MINIMUM_ROWS`, or :data:`FRACTION` of the
rows at the last analyze when that is more), an ``ANALYZE`` runs in the background: one at a time,
never on a request's path, within the store's time budget, its errors logged.

``memory_versions`` is left to autovacuum: its reads go by primary key (or the deletion index)
and get the same plans before and after an analyze.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from .postgres_pool import Pool

log = logging.getLogger(__name__)

TABLE = "memories"
MINIMUM_ROWS = 1000  # rows written before an analyze, however small the table
FRACTION = 0.1  # of the rows at the last analyze (autovacuum_analyze_scale_factor's default)

# -1 (PostgreSQL 14+) or 0 for a table never analysed
_ROWS = f"SELECT reltuples FROM pg_class WHERE oid = '{TABLE}'::regclass"


class Analyzer:
    """Counts the rows written to ``memories`` and analyses it in the background past the
    threshold. ``wrote`` never waits; ``close`` cancels an analyze still running."""

    def __init__(
        self,
        pool: Pool,
        *,
        timeout: float,
        minimum: int = MINIMUM_ROWS,
        fraction: float = FRACTION,
    ) -> None:
        self._pool = pool
        self._timeout = timeout
        self._minimum = minimum
        self._fraction = fraction
        self._written = 0
        self._threshold = minimum  # until the table's size is read
        self._sized = False
        self._running: asyncio.Task[None] | None = None
        self._closed = False
        self.analyzed = 0  # analyzes this analyzer ran

    def wrote(self, rows: int) -> None:
        """Count ``rows`` written; past the threshold start an analyze unless one runs."""
        self._written += rows
        if self._closed or self._running is not None or self._written < self._threshold:
            return
        self._running = asyncio.get_running_loop().create_task(self._analyze())
        self._running.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running = None

    def _threshold_for(self, rows: float) -> int:
        return max(self._minimum, int(self._fraction * max(rows, 0.0)))

    async def _analyze(self) -> None:
        written = self._written
        try:
            async with asyncio.timeout(self._timeout), self._pool.acquire() as connection:
                if not self._sized:  # the table's size as of its last analyze, once
                    self._threshold = self._threshold_for(await connection.fetchval(_ROWS))
                    self._sized = True
                    if written < self._threshold:
                        return
                await connection.execute(f"ANALYZE {TABLE}")
                rows = await connection.fetchval(_ROWS)
        except Exception as exc:  # a timeout, PostgreSQL away: the next threshold tries again
            log.warning("ANALYZE %s failed: %s", TABLE, str(exc) or type(exc).__name__)
            self._written -= written
            return
        self._written -= written  # rows written meanwhile count towards the next
        self._threshold = self._threshold_for(rows)
        self.analyzed += 1
        log.info(
            "analysed %s after %d rows written; next after %d", TABLE, written, self._threshold
        )

    async def close(self) -> None:
        """Stop: cancel an analyze still running (PostgreSQL cancels the statement)."""
        self._closed = True
        task = self._running
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
