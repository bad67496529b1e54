"""Export and import over HTTP: the file of ``somamemory export``, streamed as NDJSON.

Export holds one memory's history at a time; import reads the request body as it arrives and
holds one batch (``batches.py``). Both run on PostgreSQL: in a mode without it they answer 503.
The body of an import is bounded by ``SOMA_MAX_REQUEST_BYTES`` and must arrive within
``SOMA_HTTP_BODY_TIMEOUT_SECONDS``; larger files go through ``somamemory import``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from ..errors import BackendUnavailable, InvalidInput, NotPermitted
from ..live import LiveStores
from ..stores import Locks
from ..stores.postgres import PostgresStore
from ..stores.postgres_transfer import PostgresTransfer
from ..writes import WritePath
from .batches import Batch, Grouping, LinkBatch, write_batch, write_links
from .fileformat import TransferFileError, decode_line, encode_record, header, parse_header

CHUNK_BYTES = 256 * 1024  # export lines are sent in chunks of about this size


def transfer_of(live: LiveStores, what: str) -> PostgresTransfer:
    """Bulk reads and writes on the PostgreSQL in use; 503 when the service is not using it."""
    store = live.store
    if not isinstance(store, PostgresStore):
        raise BackendUnavailable(
            "postgres",
            f"{what} runs on PostgreSQL, which the service is not using now (mode {live.mode})",
        )
    return PostgresTransfer(
        store.pool, analyzer=store.analyzer, row_security=store.confinement.enabled
    )


async def open_export(
    live: LiveStores, namespace: str | None, *, include_deleted: bool = False
) -> AsyncIterator[bytes]:
    """The export of ``namespace`` (None: all) as NDJSON chunks. PostgreSQL is asked for the
    count before this returns, so a PostgreSQL away is a 503, not a cut-off stream."""
    transfer = transfer_of(live, "export")
    total = await transfer.count(namespace, include_deleted=include_deleted)
    links = await transfer.count_links(namespace)
    first = json.dumps(header(namespace, total, links)) + "\n"
    return _export_chunks(transfer, namespace, first, include_deleted)


async def _export_chunks(
    transfer: PostgresTransfer, namespace: str | None, first: str, include_deleted: bool
) -> AsyncIterator[bytes]:
    chunk = [first]
    size = 0
    async for record in transfer.records(namespace, include_deleted=include_deleted):
        line = encode_record(record) + "\n"
        chunk.append(line)
        size += len(line)
        if size >= CHUNK_BYTES:
            yield "".join(chunk).encode()
            chunk, size = [], 0
    if chunk:
        yield "".join(chunk).encode()


@dataclass
class Imported:
    """What an import did: memories read, memories that changed, links new here, and the
    namespaces written."""

    read: int = 0
    changed: int = 0
    links: int = 0
    namespaces: set[str] = field(default_factory=set)


async def _lines(chunks: AsyncIterator[bytes]) -> AsyncIterator[str]:
    """The body's lines as they arrive (UTF-8; a line is held whole, the body bounds it)."""
    pending = b""
    async for chunk in chunks:
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for raw in complete:
            yield _text(raw)
    if pending.strip():
        yield _text(pending)


def _text(raw: bytes) -> str:
    try:
        return raw.decode()
    except UnicodeDecodeError as exc:
        raise TransferFileError("the body is not UTF-8 text") from exc


async def import_stream(
    chunks: AsyncIterator[bytes],
    *,
    live: LiveStores,
    locks: Locks,
    writes: WritePath,
    permit: Callable[[str], object],
    into: str | None,
    max_payload_bytes: int,
    dim: int,
) -> Imported:
    """Import an export file arriving as ``chunks``, a batch at a time, through the write path.

    ``permit(namespace)`` raises when the caller may not write there (403), before any memory of
    that namespace is written. ``into``: every memory goes to this namespace instead (the file
    must hold one namespace). A bad line stops the import at its batch: the batches before it
    stay written (an import is idempotent, so the corrected file can simply be sent again).
    """
    transfer = transfer_of(live, "import")
    done = Imported()
    lines = _lines(chunks)
    first = await anext(lines, "")
    file_header = parse_header(first)  # a refusal here costs nothing
    source = file_header.get("namespace")
    if into is not None:
        permit(into)
    elif isinstance(source, str):
        permit(source)
    grouping = Grouping()
    origin: str | None = None
    number = 1
    async for line in lines:
        number += 1
        try:
            record = decode_line(number, line, max_payload_bytes=max_payload_bytes, dim=dim)
        except TransferFileError as exc:
            raise TransferFileError(f"{exc} ({_so_far(done)})") from exc
        if record is None:
            continue
        if into is not None:
            origin = origin or record.namespace
            if record.namespace != origin:
                raise InvalidInput(
                    f"line {number}: namespace {record.namespace!r} after {origin!r}; import "
                    f"into one namespace takes a file of one namespace ({_so_far(done)})"
                )
            record.namespace = into
        elif record.namespace not in done.namespaces:
            try:
                permit(record.namespace)
            except NotPermitted as exc:
                raise NotPermitted(f"line {number}: {exc} ({_so_far(done)})") from exc
        done.namespaces.add(record.namespace)
        for batch in grouping.push(record):
            await _write(transfer, batch, done, live=live, locks=locks, writes=writes)
    for batch in grouping.rest():
        await _write(transfer, batch, done, live=live, locks=locks, writes=writes)
    return done


def _so_far(done: Imported) -> str:
    return f"{done.read} memories before it were imported"


async def _write(
    transfer: PostgresTransfer,
    batch: Batch,
    done: Imported,
    *,
    live: LiveStores,
    locks: Locks,
    writes: WritePath,
) -> None:
    if isinstance(batch, LinkBatch):
        done.links += await write_links(transfer, batch, live=live)
        return
    done.changed += await write_batch(transfer, batch, live=live, locks=locks, writes=writes)
    done.read += len(batch)
