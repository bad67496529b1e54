"""PostgreSQL rows as the service's values: a memory, and a link of the memory graph."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import asyncpg

from ..models import Memory

_L = TypeVar("_L")


def memory_from_row(row: asyncpg.Record) -> Memory:
    """A memory from a row with the columns of ``memory_versions``; the live row's own columns
    (vector, expiry, last read) are read when the row has them."""
    vector = row.get("vector")
    return Memory(
        namespace=row["namespace"],
        coord=row["coord"],
        memory_type=row["memory_type"],
        payload=row["payload"],
        importance=row["importance"],
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        vector=list(vector) if vector is not None else None,
        expires_at=row.get("expires_at"),
        ttl_seconds=row.get("ttl_seconds"),
        refresh_on_read=bool(row.get("refresh_on_read")),
        accessed_at=row.get("accessed_at"),
    )


def link_from_row(row: asyncpg.Record, make: Callable[..., _L], **extra: Any) -> _L:
    """A link (``make``: the class to build) from a row of ``memory_links``, with ``extra``
    fields the row's class has beyond the stored columns."""
    return make(
        namespace=row["namespace"],
        from_coord=row["from_coord"],
        to_coord=row["to_coord"],
        link_type=row["link_type"],
        strength=row["strength"],
        metadata=row["metadata"],
        created_at=row["created_at"],
        **extra,
    )
