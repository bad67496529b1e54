"""The Redis-only journal: every write made while PostgreSQL is down, in order, in a Redis stream.

When PostgreSQL answers again the entries are replayed into it (``replay.py``), and the stream
is trimmed up to what PostgreSQL recorded as applied.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis

from ..models import NewMemory
from .driver_errors import unavailable
from .protocols import JournalEntry
from .redis_client import REDIS_DOWN

_unavailable = unavailable("redis", REDIS_DOWN)


def encode_put(memory: NewMemory, told: int) -> dict[str, str]:
    return {
        "version": str(told),
        "op": "put",
        "namespace": memory.namespace,
        "coord": memory.coord,
        "memory_type": memory.memory_type,
        "payload": json.dumps(memory.payload, separators=(",", ":")),
        "importance": repr(memory.importance),
        "vector": json.dumps(memory.vector) if memory.vector is not None else "",
        "expires_at": memory.expires_at.isoformat() if memory.expires_at is not None else "",
        "ttl_seconds": str(memory.ttl_seconds) if memory.ttl_seconds is not None else "",
        "refresh_on_read": "1" if memory.refresh_on_read else "",
    }


def encode_delete(namespace: str, coord: str) -> dict[str, str]:
    return {"op": "delete", "namespace": namespace, "coord": coord}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _decode(entry_id: Any, fields: Any) -> JournalEntry:
    data = {_text(key): _text(value) for key, value in fields.items()}
    memory = NewMemory(
        namespace=data["namespace"],
        coord=data["coord"],
        memory_type=data.get("memory_type", "episodic"),  # type: ignore[arg-type]
        payload=json.loads(data["payload"]) if "payload" in data else {},
        importance=float(data.get("importance", "0")),
        vector=json.loads(data["vector"]) if data.get("vector") else None,
        expires_at=datetime.fromisoformat(data["expires_at"]) if data.get("expires_at") else None,
        ttl_seconds=int(data["ttl_seconds"]) if data.get("ttl_seconds") else None,
        refresh_on_read=bool(data.get("refresh_on_read")),
    )
    told = int(data["version"]) if data.get("version") else None
    return JournalEntry(_text(entry_id), data["op"], memory, told)


class RedisJournal:
    """A Redis stream under ``{prefix}:journal``."""

    def __init__(self, client: aioredis.Redis, *, prefix: str) -> None:
        self._client = client
        self.key = f"{prefix}:journal"

    def add(self, pipe: Any, fields: dict[str, str]) -> None:
        """Queue an entry on a pipeline, so it commits with the write it records."""
        pipe.xadd(self.key, fields)  # type: ignore[arg-type]

    @_unavailable
    async def read(self, after: str, count: int) -> list[JournalEntry]:
        raw: Any = await self._client.xrange(self.key, min=f"({after}", count=count)
        return [_decode(entry_id, fields) for entry_id, fields in raw or []]

    @_unavailable
    async def trim(self, upto: str) -> None:
        """Drop entries up to and including ``upto``."""
        await self._client.xtrim(self.key, minid=upto, approximate=False)
        await self._client.xdel(self.key, upto)

    @_unavailable
    async def length(self) -> int:
        return int(await self._client.xlen(self.key))
