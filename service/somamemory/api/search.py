"""``/memories/search``: recall by meaning, with filters."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from ..models import Consistency, MemoryType
from .deps import Authorized, ReadNamespace, Service
from .errors import responses
from .schemas import SearchRequest, SearchResponse

router = APIRouter(prefix="/memories", tags=["search"], dependencies=[Authorized])


@router.post("/search", response_model=SearchResponse, responses=responses(400, 401, 503))
async def search(body: SearchRequest, namespace: ReadNamespace, service: Service) -> SearchResponse:
    """The caller's memories most similar to ``query`` (or ``vector``), best first."""
    hits = await service.search(
        namespace,
        query=body.query,
        vector=body.vector,
        top_k=body.top_k,
        filters=body.filters,
        memory_type=body.memory_type,
        consistency=body.consistency,
    )
    return SearchResponse.of(hits)


@router.get("/search", response_model=SearchResponse, responses=responses(400, 401, 503))
async def search_by_query(
    namespace: ReadNamespace,
    service: Service,
    query: Annotated[str, Query(max_length=8192, description="Text to search by meaning.")],
    top_k: Annotated[int, Query(ge=1, le=16384)] = 10,
    memory_type: MemoryType | None = None,
    consistency: Consistency | None = None,
) -> SearchResponse:
    """The same search for simple clients: query text in the URL."""
    hits = await service.search(
        namespace, query=query, top_k=top_k, memory_type=memory_type, consistency=consistency
    )
    return SearchResponse.of(hits)
