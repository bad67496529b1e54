"""Milvus through pymilvus' ``MilvusClient``: milvus-lite (a path) and a server (``http://``) alike.

pymilvus is synchronous, so every call runs in a worker thread to keep the event loop free.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from collections.abc import Sequence
from typing import Any

from pymilvus import DataType, MilvusClient

from ..errors import StartupError
from ..models import Memory

_MAX_FILTER_STRING = 1024


def milvus_string(value: str) -> str:
    """A Milvus expression string literal, with quotes and backslashes escaped."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def vector_id(namespace: str, coord: str) -> str:
    """The primary key of a memory's vector: stable, short, unique per namespace and coord."""
    return hashlib.sha256(f"{namespace}\x00{coord}".encode()).hexdigest()[:40]


def filterable_fields(payload: dict[str, Any]) -> dict[str, Any]:
    """Top-level scalar payload fields, the ones search filters may match (kept small)."""
    fields: dict[str, Any] = {}
    for key, value in payload.items():
        if isinstance(value, bool) or value is None:
            fields[key] = value
        elif isinstance(value, int | float):
            if isinstance(value, float) and not math.isfinite(value):
                continue
            fields[key] = value
        elif isinstance(value, str) and len(value) <= _MAX_FILTER_STRING:
            fields[key] = value
    return fields


class MilvusVectorStore:
    """One collection; the namespace is its partition key."""

    name = "milvus"

    def __init__(self, client: MilvusClient, *, collection: str, dim: int) -> None:
        self._client = client
        self._collection = collection
        self.dim = dim

    @classmethod
    def connect(
        cls, uri: str, *, collection: str, dim: int, token: str | None, timeout: float
    ) -> MilvusVectorStore:
        """Open the client and make sure the collection exists with the expected dimension."""
        kwargs: dict[str, Any] = {"uri": uri, "timeout": timeout}
        if token:
            kwargs["token"] = token
        client = MilvusClient(**kwargs)
        store = cls(client, collection=collection, dim=dim)
        store._ensure_collection()
        return store

    def _ensure_collection(self) -> None:
        if self._client.has_collection(self._collection):
            existing = self._existing_dim()
            if existing != self.dim:
                raise StartupError(
                    f"Milvus collection {self._collection!r} holds {existing}-dim vectors but the "
                    f"embedder makes {self.dim}-dim ones: set SOMA_EMBEDDING_DIM={existing}, or "
                    "choose another SOMA_MILVUS_COLLECTION"
                )
            self._client.load_collection(self._collection)
            return
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=64)
        schema.add_field("namespace", DataType.VARCHAR, max_length=128, is_partition_key=True)
        schema.add_field("coord", DataType.VARCHAR, max_length=8192)
        schema.add_field("memory_type", DataType.VARCHAR, max_length=16)
        schema.add_field("version", DataType.INT64)
        schema.add_field("importance", DataType.DOUBLE)
        schema.add_field("fields", DataType.JSON)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dim)
        index = self._client.prepare_index_params()
        index.add_index(field_name="vector", index_type="AUTOINDEX", metric_type="COSINE")
        self._client.create_collection(
            self._collection, schema=schema, index_params=index, consistency_level="Strong"
        )

    def _existing_dim(self) -> int:
        description = self._client.describe_collection(self._collection)
        for field in description["fields"]:
            if field["name"] == "vector":
                return int(field["params"]["dim"])
        raise StartupError(f"Milvus collection {self._collection!r} has no 'vector' field")

    async def upsert(self, items: Sequence[tuple[Memory, Sequence[float]]]) -> None:
        rows = [
            {
                "id": vector_id(memory.namespace, memory.coord),
                "namespace": memory.namespace,
                "coord": memory.coord,
                "memory_type": memory.memory_type,
                "version": memory.version,
                "importance": float(memory.importance),
                "fields": filterable_fields(memory.payload),
                "vector": [float(x) for x in vector],
            }
            for memory, vector in items
        ]
        if rows:
            await asyncio.to_thread(self._client.upsert, self._collection, rows)

    async def delete(self, namespace: str, coords: Sequence[str]) -> None:
        ids = [vector_id(namespace, coord) for coord in coords]
        if ids:
            await asyncio.to_thread(self._client.delete, self._collection, ids=ids)

    async def get_vector(self, namespace: str, coord: str) -> list[float] | None:
        rows = await asyncio.to_thread(
            self._client.get,
            self._collection,
            ids=[vector_id(namespace, coord)],
            output_fields=["vector"],
        )
        return [float(x) for x in rows[0]["vector"]] if rows else None

    async def count(self, namespace: str) -> int:
        rows = await asyncio.to_thread(
            self._client.query,
            self._collection,
            filter=f"namespace == {milvus_string(namespace)}",
            output_fields=["count(*)"],
        )
        return int(rows[0]["count(*)"]) if rows else 0

    async def ping(self) -> None:
        await asyncio.to_thread(self._client.has_collection, self._collection)

    async def close(self) -> None:
        await asyncio.to_thread(self._client.close)
