"""``/graph``: links between memories of a namespace, neighbourhoods and shortest paths."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from ..links import MAX_K_HOP, MAX_NEIGHBORS, MAX_PATH_LENGTH
from .deps import ReadNamespace, Service, WriteNamespace
from .errors import responses
from .graph_schemas import (
    LinkRequest,
    LinkResponse,
    NeighborOut,
    NeighborsResponse,
    PathResponse,
    UnlinkResponse,
)
from .json_body import FastJsonRoute

router = APIRouter(route_class=FastJsonRoute, prefix="/graph", tags=["graph"])

_TYPE = "Only links of this type (default: every type)."
_DIRECTION = "Follow links forward (out, the default), backward (in) or both ways."


@router.post("/link", response_model=LinkResponse, responses=responses(400, 401, 404, 503))
async def link(body: LinkRequest, namespace: WriteNamespace, service: Service) -> LinkResponse:
    """Link two memories of the namespace (404 if either is missing). Linking again with the
    same type updates the link's strength and metadata."""
    made = await service.graph.link(
        namespace,
        body.from_coord,
        body.to_coord,
        body.link_type,
        strength=body.strength,
        metadata=body.metadata,
    )
    return LinkResponse(
        from_coord=made.from_coord,
        to_coord=made.to_coord,
        link_type=made.link_type,
        ok=True,
        strength=made.strength,
        created=made.created,
        created_at=made.created_at,
    )


@router.delete("/link", response_model=UnlinkResponse, responses=responses(400, 401, 503))
async def unlink(
    namespace: WriteNamespace,
    service: Service,
    from_coord: Annotated[str, Query(description="The memory the link starts from.")],
    to_coord: Annotated[str, Query(description="The memory it points to.")],
    link_type: Annotated[str | None, Query(description="Remove only this type.")] = None,
) -> UnlinkResponse:
    """Remove a link (query parameters); without ``link_type``, every link from one memory to
    the other. Removing a link that is not there answers ``deleted: false``."""
    start, end, removed = await service.graph.unlink(namespace, from_coord, to_coord, link_type)
    return UnlinkResponse(
        from_coord=start,
        to_coord=end,
        link_type=link_type,
        ok=True,
        deleted=removed > 0,
        removed=removed,
    )


@router.get("/neighbors", response_model=NeighborsResponse, responses=responses(400, 401, 404, 503))
async def neighbors(
    namespace: ReadNamespace,
    service: Service,
    coord: Annotated[str, Query(description="The memory to start from.")],
    k_hop: Annotated[int, Query(description=f"Links to follow, 1 to {MAX_K_HOP}.")] = 1,
    link_type: Annotated[str | None, Query(description=_TYPE)] = None,
    limit: Annotated[int, Query(description=f"At most this many, 1 to {MAX_NEIGHBORS}.")] = 10,
    direction: Annotated[str, Query(description=_DIRECTION)] = "out",
) -> NeighborsResponse:
    """The memories within ``k_hop`` links of ``coord``, nearest first, then strongest link."""
    start, found = await service.graph.neighbors(
        namespace, coord, k_hop=k_hop, limit=limit, link_type=link_type, direction=direction
    )
    return NeighborsResponse(coord=start, neighbors=[NeighborOut.of(n) for n in found])


@router.get("/path", response_model=PathResponse, responses=responses(400, 401, 404, 503))
async def path(
    namespace: ReadNamespace,
    service: Service,
    from_coord: Annotated[str, Query(description="The memory to start from.")],
    to_coord: Annotated[str, Query(description="The memory to reach.")],
    max_length: Annotated[
        int, Query(description=f"At most this many links, 1 to {MAX_PATH_LENGTH}.")
    ] = MAX_PATH_LENGTH,
    link_type: Annotated[str | None, Query(description=_TYPE)] = None,
    direction: Annotated[str, Query(description=_DIRECTION)] = "out",
) -> PathResponse:
    """A shortest path by number of links; ``found: false`` (200) when there is none."""
    start, end, found = await service.graph.path(
        namespace,
        from_coord,
        to_coord,
        max_length=max_length,
        link_type=link_type,
        direction=direction,
    )
    return PathResponse(
        from_coord=start,
        to_coord=end,
        path=found.path,
        link_types=found.link_types,
        found=found.found,
        hops=len(found.path) - 1 if found.found else None,
        exhausted=found.exhausted,
    )
