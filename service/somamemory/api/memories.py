"""``/memories``: store, read, list versions, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from .deps import Authorized, ReadNamespace, Service, WriteNamespace
from .errors import responses
from .schemas import (
    DeleteResponse,
    DeletionReceiptOut,
    DeletionStatusResponse,
    MemoryOut,
    MemoryResponse,
    StoreRequest,
    StoreResponse,
    VersionsResponse,
)

router = APIRouter(prefix="/memories", tags=["memories"], dependencies=[Authorized])


@router.post("", response_model=StoreResponse, responses=responses(400, 401, 413, 503))
async def store_memory(
    body: StoreRequest, namespace: WriteNamespace, service: Service
) -> StoreResponse:
    """Store a memory (upsert: the version increments). Answers after the write is durable."""
    memory, indexed = await service.store_memory(
        namespace,
        body.coord,
        body.payload,
        memory_type=body.memory_type,
        importance=body.importance,
        vector=body.vector,
    )
    return StoreResponse(
        coord=memory.coord,
        memory_type=memory.memory_type,
        ok=True,
        namespace=namespace,
        version=memory.version,
        indexed=indexed,
    )


@router.get("/{coord}", response_model=MemoryResponse, responses=responses(400, 401, 404, 503))
async def get_memory(coord: str, namespace: ReadNamespace, service: Service) -> Response:
    """Read the live version of a memory."""
    memory_json = await service.get_memory_json(namespace, coord)
    return Response(b'{"memory":' + memory_json + b"}", media_type="application/json")


@router.get(
    "/{coord}/versions",
    response_model=VersionsResponse,
    responses=responses(400, 401, 404, 503),
)
async def memory_versions(
    coord: str,
    namespace: ReadNamespace,
    service: Service,
    after: Annotated[int, Query(ge=0, description="Only versions newer than this one.")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many versions.")] = 100,
) -> VersionsResponse:
    """The versions of a memory, oldest first, a page at a time (follow ``next_after``)."""
    key, page, next_after = await service.memory_versions(
        namespace, coord, after=after, limit=limit
    )
    return VersionsResponse(
        coord=key, versions=[MemoryOut.of(memory) for memory in page], next_after=next_after
    )


@router.delete("/{coord}", response_model=DeleteResponse, responses=responses(400, 401, 503))
async def delete_memory(coord: str, namespace: WriteNamespace, service: Service) -> DeleteResponse:
    """Delete a memory with all its versions. Deleting twice is fine (``deleted: false``).

    The receipt says where it is gone from already (canonical store, cache, vector store)."""
    receipt = await service.delete_memory(namespace, coord)
    return DeleteResponse(
        coord=receipt.coord,
        deleted=receipt.deleted,
        receipt=DeletionReceiptOut(
            canonical=receipt.canonical, cache=receipt.cache, vector=receipt.vector
        ),
    )


@router.get(
    "/{coord}/deletion",
    response_model=DeletionStatusResponse,
    responses=responses(400, 401, 503),
)
async def deletion_status(
    coord: str, namespace: ReadNamespace, service: Service
) -> DeletionStatusResponse:
    """Whether every store is clear of a memory now (after a delete, an expiry, an eviction)."""
    status = await service.deletion_status(namespace, coord)
    return DeletionStatusResponse(
        coord=status.coord,
        clear=status.clear,
        canonical=status.canonical,
        cache=status.cache,
        vector=status.vector,
    )
