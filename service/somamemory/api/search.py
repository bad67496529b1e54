"""``/memories/search``: recall by meaning, by keywords or both (hybrid), with filters."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from ..models import Consistency, MemoryType
from .deps import ReadNamespace, Service
from .errors import responses
from .json_body import FastJsonRoute
from .schemas import SearchRequest, SearchResponse

router = APIRouter(route_class=FastJsonRoute, prefix="/memories", tags=["search"])


@router.post("/search", response_model=SearchResponse, responses=responses(400, 401, 503))
async def search(body: SearchRequest, namespace: ReadNamespace, service: Service) -> SearchResponse:
    """The caller's memories best matching ``query`` (or ``vector``), best first: by meaning and
    keywords fused (``mode`` hybrid, the default with a query), or by either alone."""
    found = await service.search_ranked(
        namespace,
        query=body.query,
        vector=body.vector,
        top_k=body.top_k,
        filters=body.filters,
        memory_type=body.memory_type,
        consistency=body.consistency,
        mode=body.mode,
        rank=body.rank,
    )
    hits = [(hit.memory, hit.score) for hit in found.hits]
    if body.expand is None:
        return SearchResponse.of(hits, ranked=found)
    expansions = await service.expand_hits(
        namespace, hits, link_type=body.expand.link_type, depth=body.expand.depth
    )
    return SearchResponse.of(hits, expansions, ranked=found)


@router.get("/search", response_model=SearchResponse, responses=responses(400, 401, 503))
async def search_by_query(
    namespace: ReadNamespace,
    service: Service,
    query: Annotated[str, Query(max_length=8192, description="Text to search by meaning.")],
    top_k: Annotated[int, Query(ge=1, le=16384)] = 10,
    memory_type: MemoryType | None = None,
    consistency: Consistency | None = None,
    mode: Annotated[
        str | None, Query(max_length=16, description="hybrid (default), vector or keyword.")
    ] = None,
    rank: Annotated[
        str | None, Query(max_length=16, description="similarity (default) or blended.")
    ] = None,
) -> SearchResponse:
    """The same search for simple clients: query text in the URL."""
    found = await service.search_ranked(
        namespace,
        query=query,
        top_k=top_k,
        memory_type=memory_type,
        consistency=consistency,
        mode=mode,
        rank=rank,
    )
    return SearchResponse.of([(hit.memory, hit.score) for hit in found.hits], ranked=found)
