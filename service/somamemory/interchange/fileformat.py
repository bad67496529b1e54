"""The export file: JSON Lines, a header object first, then one memory with its history a line.

```
{"format": "somamemory.export", "version": 1, "exported_at": "...", "namespace": null, ...}
{"namespace": "default", "coord": "1.0,2.0", "memory_type": "semantic",
 "versions": [{"version": 1, "payload": {...}, "importance": 0.0, "memory_type": "semantic",
               "created_at": "...Z", "updated_at": "...Z"}, ...], "vector": [...]}
```

``vector`` is there only when the client gave its own (the embedder's are recomputed on import).
``deleted_at`` is on a version a delete ended (an earlier life of the memory, or the end of a
deleted memory exported on request); readers that predate it ignore it. A reader refuses a file
of a newer format version than it knows.
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
from ..models import MEMORY_TYPES, timestamp
from ..payloads import validate_payload
from ..stores.postgres_transfer import MemoryHistory, VersionRecord
from ..writes import check_vector

FORMAT = "somamemory.export"
FORMAT_VERSION = 1
_NAMESPACE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


class TransferFileError(InvalidInput):
    """The file cannot be imported as it is; the message says where and why (400 over HTTP)."""


def header(namespace: str | None, memories: int) -> dict[str, Any]:
    """The first line: what the file is, and how many memories it should hold."""
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "exported_at": timestamp(datetime.now(UTC)),
        "namespace": namespace,
        "memories": memories,
    }


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


def read_histories(stream: IO[str], *, max_payload_bytes: int, dim: int) -> Iterator[MemoryHistory]:
    """The memories after the header, checked as the service checks a write."""
    for number, line in enumerate(stream, start=2):
        history = decode_line(number, line, max_payload_bytes=max_payload_bytes, dim=dim)
        if history is not None:
            yield history


def decode_line(
    number: int, line: str, *, max_payload_bytes: int, dim: int
) -> MemoryHistory | None:
    """Line ``number`` as a memory history (None for a blank line); TransferFileError says where
    and what is wrong."""
    if not line.strip():
        return None
    try:
        return decode(json.loads(line), max_payload_bytes=max_payload_bytes, dim=dim)
    except (ValueError, TypeError, KeyError, SomaError) as exc:
        raise TransferFileError(f"line {number}: {exc}") from exc


def decode(data: Any, *, max_payload_bytes: int, dim: int) -> MemoryHistory:
    """A line's object as a memory history; ValueError/SomaError says what is wrong."""
    if not isinstance(data, dict):
        raise ValueError("a memory line must be a JSON object")
    namespace = data["namespace"]
    if not isinstance(namespace, str) or not _NAMESPACE.fullmatch(namespace):
        raise ValueError(f"namespace {namespace!r} is not valid (letters, digits, '_.-', 1-64)")
    coord = normalize_coord(str(data["coord"]))
    versions = [_version(v, max_payload_bytes) for v in data["versions"]]
    if not versions:
        raise ValueError("a memory needs at least one version")
    numbers = [v.version for v in versions]
    if numbers != sorted(set(numbers)):
        raise ValueError("versions must be listed oldest first, each once")
    raw_vector = data.get("vector")
    vector = check_vector(raw_vector, dim) if raw_vector is not None else None
    return MemoryHistory(namespace, coord, versions[-1].memory_type, versions, vector)


def _version(data: Any, max_payload_bytes: int) -> VersionRecord:
    if not isinstance(data, dict):
        raise ValueError("a version must be a JSON object")
    number = data["version"]
    if not isinstance(number, int) or isinstance(number, bool) or number < 1:
        raise ValueError(f"version {number!r} is not a positive integer")
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
