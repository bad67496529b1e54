"""``/memories``: store, read, list versions, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from ..models import MAX_VERSION
from .deps import ReadNamespace, Service, WriteNamespace
from .errors import responses
from .json_body import FastJsonRoute
from .schemas import (
    DeleteResponse,
    DeletionReceiptOut,
    DeletionStatusResponse,
    MemoryResponse,
    StoreRequest,
    StoreResponse,
    VersionOut,
    VersionsResponse,
)

router = APIRouter(route_class=FastJsonRoute, prefix="/memories", tags=["memories"])


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
        ttl_seconds=body.ttl_seconds,
        expires_at=body.expires_at,
        refresh_on_read=body.refresh_on_read,
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
async def get_memory(
    coord: str,
    namespace: ReadNamespace,
    service: Service,
    as_of: Annotated[
        str | None,
        Query(
            description="An ISO 8601 time with a zone: the version current then (a future time "
            "reads now). 404 if the memory did not exist yet or had been deleted by then; "
            "deleted memories are kept for SOMA_DELETED_HISTORY_RETENTION_SECONDS. 503 in a "
            "mode without PostgreSQL.",
        ),
    ] = None,
) -> Response:
    """Read the live version of a memory, or with ``as_of`` the one current at that time."""
    if as_of is not None:
        memory = await service.memory_as_of(namespace, coord, as_of)
        return Response(
            b'{"memory":' + memory.to_json().encode() + b"}", media_type="application/json"
        )
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
    after: Annotated[
        int, Query(ge=0, le=MAX_VERSION, description="Only versions newer than this one.")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many versions.")] = 100,
) -> VersionsResponse:
    """The versions of a live memory, oldest first, a page at a time: ask again with
    ``?after=<next_after>`` until ``next_after`` is null. A deleted memory answers 404 (its kept
    history is read with ``GET /memories/{coord}?as_of=``); one written again after a delete
    lists its earlier life too, ``deleted_at`` on the version the delete ended."""
    key, page, next_after = await service.memory_versions(
        namespace, coord, after=after, limit=limit
    )
    deleted = await service.version_deletions(namespace, key, page, after)
    return VersionsResponse(
        coord=key,
        versions=[VersionOut.of_version(memory, deleted.get(memory.version)) for memory in page],
        next_after=next_after,
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
