"""Replay the Redis-only journal into PostgreSQL, in order, exactly once.

Each chunk is applied in one transaction that also records the last stream id applied (row
``journal_replay``, locked for the transaction, so concurrent replicas take turns). A crash
mid-replay rolls the chunk back; the next replay resumes after the recorded id, so no write is
applied twice and no version is duplicated.
"""

from __future__ import annotations

import logging

import asyncpg

from .stores.journal import JournalEntry, RedisJournal
from .stores.postgres import delete_in, put_many_in

log = logging.getLogger(__name__)
CHUNK = 500

_LAST = "SELECT last_id FROM journal_replay WHERE journal = $1 FOR UPDATE"
_INIT = "INSERT INTO journal_replay (journal, last_id) VALUES ($1, '0') ON CONFLICT DO NOTHING"
_SAVE = "UPDATE journal_replay SET last_id = $2 WHERE journal = $1"


async def _apply(connection: asyncpg.Connection, entries: list[JournalEntry]) -> None:
    """Consecutive puts go in one multi-row upsert; deletes in between keep their place."""
    puts: list[JournalEntry] = []
    for entry in [*entries, None]:
        if entry is not None and entry.op == "put":
            puts.append(entry)
            continue
        if puts:
            await put_many_in(connection, [put.memory for put in puts])
            puts = []
        if entry is not None:
            await delete_in(connection, entry.memory.namespace, entry.memory.coord)


async def replay_journal(journal: RedisJournal, pool: asyncpg.Pool) -> set[tuple[str, str]]:
    """Apply every journaled write PostgreSQL has not seen yet; return the (namespace, coord)
    pairs it touched (their cache entries predate the outage)."""
    touched: set[tuple[str, str]] = set()
    last = "0"
    while True:
        async with pool.acquire() as connection, connection.transaction():
            await connection.execute(_INIT, journal.key)
            last = await connection.fetchval(_LAST, journal.key)
            entries = await journal.read(last, CHUNK)
            if not entries:
                break
            await _apply(connection, entries)
            await connection.execute(_SAVE, journal.key, entries[-1].id)
        touched.update((e.memory.namespace, e.memory.coord) for e in entries)
        last = entries[-1].id
    if last != "0":
        await journal.trim(last)
    if touched:
        log.warning("replayed journaled writes of %d memories into PostgreSQL", len(touched))
    return touched
