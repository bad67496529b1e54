"""Replay the Redis-only journal into PostgreSQL, in order, exactly once.

Each chunk is applied in one transaction that also records the last stream id applied (row
``journal_replay``, locked for the transaction, so concurrent replicas take turns). A crash
mid-replay rolls the chunk back; the next replay resumes after the recorded id, so no write is
applied twice and no version is duplicated.
"""

from __future__ import annotations

import logging

from .stores.journal import RedisJournal
from .stores.postgres import PostgresStore

log = logging.getLogger(__name__)
CHUNK = 500


async def replay_journal(journal: RedisJournal, target: PostgresStore) -> set[tuple[str, str]]:
    """Apply every journaled write PostgreSQL has not seen yet; return the (namespace, coord)
    pairs it touched (their cache entries predate the outage)."""
    touched: set[tuple[str, str]] = set()
    while True:
        last, entries = await target.apply_journal(journal.key, journal.read, CHUNK)
        if not entries:
            break
        touched.update((e.memory.namespace, e.memory.coord) for e in entries)
    if last != "0":  # drop what PostgreSQL holds now (a replay cut short may have left some)
        await journal.trim(last)
    if touched:
        log.warning("replayed journaled writes of %d memories into PostgreSQL", len(touched))
    return touched
