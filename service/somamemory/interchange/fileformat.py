"""The export file: JSON Lines, a header object first, then one memory with its history a line,
then one link of the memory graph a line.

```
{"format": "somamemory.export", "version": 2, "exported_at": "...", "namespace": null,
 "memories": 2, "links": 1}
{"namespace": "default", "coord": "1.0,2.0", "memory_type": "semantic",
 "versions": [{"version": 1, "payload": {...}, "importance": 0.0, "memory_type": "semantic",
               "created_at": "...Z", "updated_at": "...Z"}, ...], "vector": [...],
 "expires_at": "...Z", "ttl_seconds": 3600, "refresh_on_read": true, "accessed_at": "...Z"}
{"kind": "link", "namespace": "default", "from_coord": "1.0,2.0", "to_coord": "3.0",
 "link_type": "related", "strength": 1.0, "metadata": {}, "created_at": "...Z"}
```

``vector`` is there only when the client gave its own (the embedder's are recomputed on import).
``deleted_at`` is on a version a delete ended (an earlier life of the memory, or the end of a
deleted memory exported on request). ``expires_at``, ``ttl_seconds`` (kept for
``refresh_on_read``), ``refresh_on_read`` and ``accessed_at`` (the last read, which decay counts
from) are the live memory's, each only when set. Links come after every memory (an import needs
both ends there first).

Version 2 added expiry, the last read and links. A version 1 reader would drop them silently
(an expiring memory would live forever), so the version says so and such a reader refuses the
file. This reader reads version 1 files as well (none of those fields, no links), and refuses a
file of a newer version than it knows.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import IO, Any

from ..coords import normalize_coord
from ..errors import InvalidInput, SomaError
from ..graph import check_link_type
from ..links import MAX_LINK_METADATA_BYTES
from ..models import MAX_VERSION, MEMORY_TYPES, timestamp
from ..payloads import validate_payload
from ..stores.postgres_transfer import LinkRecord, MemoryHistory, VersionRecord
from ..writes import check_vector

FORMAT = "somamemory.export"
FORMAT_VERSION = 2
LINK = "link"  # the ``kind`` of a link line (a memory line has none)
MAX_TTL_SECONDS = 10**10  # about 317 years: far beyond any TTL a write may ask for
_NAMESPACE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


class TransferFileError(InvalidInput):
    """The file cannot be imported as it is; the message says where and why (400 over HTTP)."""


def header(namespace: str | None, memories: int, links: int = 0) -> dict[str, Any]:
    """The first line: what the file is, and how many memories and links it should hold."""
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "exported_at": timestamp(datetime.now(UTC)),
        "namespace": namespace,
        "memories": memories,
        "links": links,
    }


def encode_record(record: MemoryHistory | LinkRecord) -> str:
    """A memory or a link as one line (no newline)."""
    return encode_link(record) if isinstance(record, LinkRecord) else encode(record)


def encode_link(link: LinkRecord) -> str:
    """One link as one line (no newline)."""
    line = {
        "kind": LINK,
        "namespace": link.namespace,
        "from_coord": link.from_coord,
        "to_coord": link.to_coord,
        "link_type": link.link_type,
        "strength": link.strength,
        "metadata": link.metadata,
        "created_at": timestamp(link.created_at),
    }
    return json.dumps(line, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def encode(history: MemoryHistory) -> str:
    """One memory as one line (no newline)."""
    line: dict[str, Any] = {
        "namespace": history.namespace,
        "coord": history.coord,
        "memory_type": history.memory_type,
        "versions": [
            {
                "version": v.version,
                "payload": v.payload,
                "importance": v.importance,
                "memory_type": v.memory_type,
                "created_at": timestamp(v.created_at),
                "updated_at": timestamp(v.updated_at),
                **({"deleted_at": timestamp(v.deleted_at)} if v.deleted_at is not None else {}),
            }
            for v in history.versions
        ],
    }
    if history.vector is not None:
        line["vector"] = history.vector
    if history.expires_at is not None:
        line["expires_at"] = timestamp(history.expires_at)
    if history.ttl_seconds is not None:
        line["ttl_seconds"] = history.ttl_seconds
    if history.refresh_on_read:
        line["refresh_on_read"] = True
    if history.accessed_at is not None:
        line["accessed_at"] = timestamp(history.accessed_at)
    return json.dumps(line, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def read_header(stream: IO[str]) -> dict[str, Any]:
    """The header of ``stream``; refuses what is not an export, or one newer than this reader."""
    return parse_header(stream.readline())


def parse_header(first: str) -> dict[str, Any]:
    """The header line parsed; refuses what is not an export, or one newer than this reader."""
    try:
        data = json.loads(first)
    except ValueError:
        data = None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise TransferFileError(f"line 1: not a SomaMemory export (no {FORMAT!r} header)")
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise TransferFileError(f"line 1: the format version {version!r} is not a version")
    if version > FORMAT_VERSION:
        raise TransferFileError(
            f"the file is format version {version}; this somamemory reads up to version "
            f"{FORMAT_VERSION}: import it with a newer somamemory"
        )
    return data


def read_records(
    stream: IO[str], *, max_payload_bytes: int, dim: int
) -> Iterator[MemoryHistory | LinkRecord]:
    """The memories and links after the header, checked as the service checks a write."""
    for number, line in enumerate(stream, start=2):
        record = decode_line(number, line, max_payload_bytes=max_payload_bytes, dim=dim)
        if record is not None:
            yield record


def decode_line(
    number: int, line: str, *, max_payload_bytes: int, dim: int
) -> MemoryHistory | LinkRecord | None:
    """Line ``number`` as a memory history or a link (None for a blank line);
    TransferFileError says where and what is wrong."""
    if not line.strip():
        return None
    try:
        data = json.loads(line)
        if isinstance(data, dict) and "kind" in data:
            if data["kind"] != LINK:
                raise ValueError(f"kind {data['kind']!r} is not {LINK!r} (a memory line has none)")
            return decode_link(data)
        return decode(data, max_payload_bytes=max_payload_bytes, dim=dim)
    except (ValueError, TypeError, KeyError, SomaError) as exc:
        raise TransferFileError(f"line {number}: {exc}") from exc


def decode_link(data: dict[str, Any]) -> LinkRecord:
    """A link line's object as a link; ValueError/SomaError says what is wrong."""
    strength = float(data.get("strength", 1.0))
    if not math.isfinite(strength):
        raise ValueError("strength must be a finite number")
    metadata = data.get("metadata", {})
    if not isinstance(metadata, dict):
        raise ValueError("metadata must be a JSON object")
    validate_payload(metadata, MAX_LINK_METADATA_BYTES)
    link_type = data["link_type"]
    if not isinstance(link_type, str):
        raise ValueError("link_type must be a string")
    return LinkRecord(
        namespace=_namespace(data["namespace"]),
        from_coord=normalize_coord(str(data["from_coord"])),
        to_coord=normalize_coord(str(data["to_coord"])),
        link_type=check_link_type(link_type),
        strength=strength,
        metadata=metadata,
        created_at=_moment(data["created_at"]),
    )


def _namespace(namespace: Any) -> str:
    if not isinstance(namespace, str) or not _NAMESPACE.fullmatch(namespace):
        raise ValueError(f"namespace {namespace!r} is not valid (letters, digits, '_.-', 1-64)")
    return namespace


def decode(data: Any, *, max_payload_bytes: int, dim: int) -> MemoryHistory:
    """A line's object as a memory history; ValueError/SomaError says what is wrong."""
    if not isinstance(data, dict):
        raise ValueError("a memory line must be a JSON object")
    namespace = _namespace(data["namespace"])
    coord = normalize_coord(str(data["coord"]))
    versions = [_version(v, max_payload_bytes) for v in data["versions"]]
    if not versions:
        raise ValueError("a memory needs at least one version")
    numbers = [v.version for v in versions]
    if numbers != sorted(set(numbers)):
        raise ValueError("versions must be listed oldest first, each once")
    raw_vector = data.get("vector")
    vector = check_vector(raw_vector, dim) if raw_vector is not None else None
    history = MemoryHistory(namespace, coord, versions[-1].memory_type, versions, vector)
    _expiry(history, data)
    return history


def _expiry(history: MemoryHistory, data: dict[str, Any]) -> None:
    """The live memory's expiry and last read, as stored where it came from (version 2)."""
    if data.get("expires_at") is not None:
        history.expires_at = _moment(data["expires_at"])
    ttl = data.get("ttl_seconds")
    if ttl is not None:
        if not isinstance(ttl, int) or isinstance(ttl, bool) or not 1 <= ttl <= MAX_TTL_SECONDS:
            raise ValueError(
                f"ttl_seconds {ttl!r} is not a whole number of seconds from 1 to {MAX_TTL_SECONDS}"
            )
        history.ttl_seconds = ttl
    refresh = data.get("refresh_on_read", False)
    if not isinstance(refresh, bool):
        raise ValueError("refresh_on_read must be true or false")
    if refresh and (history.ttl_seconds is None or history.expires_at is None):
        raise ValueError("refresh_on_read needs ttl_seconds and expires_at")
    history.refresh_on_read = refresh
    if data.get("accessed_at") is not None:
        history.accessed_at = _moment(data["accessed_at"])


def _version(data: Any, max_payload_bytes: int) -> VersionRecord:
    if not isinstance(data, dict):
        raise ValueError("a version must be a JSON object")
    number = data["version"]
    if not isinstance(number, int) or isinstance(number, bool) or not 1 <= number <= MAX_VERSION:
        raise ValueError(f"version {number!r} is not a positive integer (up to 2**63 - 1)")
    memory_type = data["memory_type"]
    if memory_type not in MEMORY_TYPES:
        raise ValueError(f"memory_type {memory_type!r} is not one of {', '.join(MEMORY_TYPES)}")
    payload = data["payload"]
    if not isinstance(payload, dict):
        raise ValueError("payload must be a JSON object")
    validate_payload(payload, max_payload_bytes)
    importance = float(data.get("importance", 0.0))
    if not math.isfinite(importance):
        raise ValueError("importance must be a finite number")
    return VersionRecord(
        version=number,
        memory_type=memory_type,
        payload=payload,
        importance=importance,
        created_at=_moment(data["created_at"]),
        updated_at=_moment(data["updated_at"]),
        deleted_at=_moment(data["deleted_at"]) if data.get("deleted_at") is not None else None,
    )


def _moment(text: Any) -> datetime:
    moment = datetime.fromisoformat(str(text))
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no time zone")
    return moment
