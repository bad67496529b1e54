"""The three commands, each an async function on the settings of ``serve``.

Export and import stream: export holds one memory's history at a time, import one batch.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from ..interchange.batches import LinkBatch, grouped, write_batch, write_links
from ..interchange.fileformat import encode_record, header, read_header, read_records
from ..settings import Settings
from ..stores.postgres_transfer import MemoryHistory
from .progress import progress
from .session import Session, opened

FLUSH_EVERY = 20  # batches between vector flushes (milvus-lite keeps the rest in memory)


@contextlib.contextmanager
def _open(target: str, mode: str) -> Iterator[IO[str]]:
    """``target`` as a UTF-8 text file; ``-`` is stdin or stdout."""
    if target == "-":
        stream = sys.stdout if "w" in mode else sys.stdin
        yield stream
        stream.flush()
        return
    with Path(target).open(mode, encoding="utf-8", newline="\n") as handle:
        yield handle


async def export(
    settings: Settings,
    target: str,
    *,
    namespace: str | None = None,
    include_deleted: bool = False,
) -> int:
    """Write every memory (of ``namespace``, or all) with all its versions, then the links
    between them; return the count of memories. ``include_deleted``: deleted memories whose
    history is still kept too."""
    written = 0
    async with opened(settings, vectors=False) as session:
        total = await session.transfer.count(namespace, include_deleted=include_deleted)
        links = await session.transfer.count_links(namespace)
        with _open(target, "w") as out, progress("export", total) as shown:
            out.write(json.dumps(header(namespace, total, links)) + "\n")
            async for record in session.transfer.records(
                namespace, include_deleted=include_deleted
            ):
                out.write(encode_record(record) + "\n")
                if isinstance(record, MemoryHistory):
                    written += 1
                    shown.advance(1)
    return written


async def import_file(
    settings: Settings, source: str, *, index: bool = True
) -> tuple[int, int, int]:
    """Write the memories and links of an export file; return (memories read, memories that
    changed, links new here).

    Versions keep their numbers and timestamps and go in with ``ON CONFLICT DO NOTHING``, links
    too, so a second run, or a run resumed after an interruption, changes nothing already there.
    """
    read = changed = linked = 0
    with _open(source, "r") as stream:
        file_header = read_header(stream)  # before any backend opens: a refusal costs nothing
        total = file_header.get("memories")
        async with opened(settings, vectors=index) as session:
            records = read_records(
                stream, max_payload_bytes=settings.max_payload_bytes, dim=settings.embedding_dim
            )
            with progress("import", total if isinstance(total, int) else None) as shown:
                number = 0
                for batch in grouped(records):
                    if isinstance(batch, LinkBatch):
                        linked += await _import_links(session, batch)
                        continue
                    changed += await _import_batch(session, batch)
                    read += len(batch)
                    shown.advance(len(batch))
                    number += 1
                    if session.vectors is not None and number % FLUSH_EVERY == 0:
                        await session.vectors.writes.flush()
    return read, changed, linked


async def _import_links(session: Session, batch: LinkBatch) -> int:
    if session.vectors is None:
        added, _skipped = await session.transfer.import_links(batch.links)
        return added
    return await write_links(session.transfer, batch, live=session.vectors.backends.live)


async def _import_batch(session: Session, batch: list[MemoryHistory]) -> int:
    if session.vectors is None:
        return len(await session.transfer.import_histories(batch))
    vectors = session.vectors
    return await write_batch(
        session.transfer,
        batch,
        live=vectors.backends.live,
        locks=vectors.backends.locks,
        writes=vectors.writes,
    )


async def reindex(
    settings: Settings, *, namespace: str | None = None, index: bool = True
) -> tuple[int, int]:
    """Enqueue every live memory's vector, then drain the outbox; return (enqueued, still owed).

    The vectors are rebuilt from PostgreSQL as it is now, rows edited outside the service
    included. Without a vector store of its own (a running ``serve`` holds it, or ``index`` is
    off) the command only enqueues, and the running service's reconciler does the rest.
    """
    async with opened(settings, vectors=index) as session:
        enqueued = await session.transfer.enqueue_all(namespace)
        if session.vectors is None:
            return enqueued, await session.transfer.backlog(namespace)
        with progress("reindex", enqueued) as shown:
            while handled := await session.vectors.reconciler.run_once():
                shown.advance(handled)
        return enqueued, await session.transfer.backlog(namespace)
