"""Request and response bodies (compatible with SomaFractalMemory's; extra fields are ours)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..models import Memory, MemoryType


class ErrorResponse(BaseModel):
    detail: str = Field(description="What went wrong, and what to do about it.")


class StoreRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    coord: str = Field(
        description="Comma-separated finite numbers, 1 to 64 of them.", examples=["0.1,0.2,0.3"]
    )
    payload: dict[str, Any] = Field(description="The memory: any JSON object.")
    memory_type: MemoryType = "episodic"
    importance: float = Field(0.0, description="Caller-defined weight; any finite number.")
    vector: list[float] | None = Field(
        None, description="The memory's own embedding; otherwise the service embeds the payload."
    )


class StoreResponse(BaseModel):
    coord: str
    memory_type: MemoryType
    ok: bool
    namespace: str
    version: int
    indexed: bool = Field(description="Whether the vector reached the vector store already.")


class MemoryOut(BaseModel):
    namespace: str
    coord: str
    memory_type: MemoryType
    payload: dict[str, Any]
    importance: float
    version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, memory: Memory) -> MemoryOut:
        return cls(
            namespace=memory.namespace,
            coord=memory.coord,
            memory_type=memory.memory_type,
            payload=memory.payload,
            importance=memory.importance,
            version=memory.version,
            created_at=memory.created_at,
            updated_at=memory.updated_at,
        )


class MemoryResponse(BaseModel):
    memory: MemoryOut


class VersionsResponse(BaseModel):
    coord: str
    versions: list[MemoryOut] = Field(description="Every stored version, oldest first.")


class DeleteResponse(BaseModel):
    coord: str
    deleted: bool


class StatsResponse(BaseModel):
    namespace: str
    total_memories: int
    episodic: int
    semantic: int
    vector_count: int | None = Field(description="None when the vector store does not answer.")
    namespaces: dict[str, int] = Field(description="Live memories of the caller's namespace.")


class BackendHealth(BaseModel):
    ok: bool
    kind: str
    detail: str | None = None


class HealthResponse(BaseModel):
    kv_store: bool
    vector_store: bool
    graph_store: bool = Field(description="Always false: the graph API is not part of this build.")
    cache: bool
    mode: str
    degraded: bool
    backends: dict[str, BackendHealth]


class ProbeResponse(BaseModel):
    status: str
