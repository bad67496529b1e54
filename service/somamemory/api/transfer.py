"""``GET /export`` and ``POST /import``: ``somamemory export | import`` over HTTP, as NDJSON.

For moderate sizes: an import's body is bounded by ``SOMA_MAX_REQUEST_BYTES`` (413 beyond) and
must arrive within ``SOMA_HTTP_BODY_TIMEOUT_SECONDS``; bigger files go through the CLI.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from ..errors import NotPermitted
from .deps import Authorized, Caller, Requested, Service, authorize, requested_namespace
from .errors import responses
from .json_body import FastJsonRoute

router = APIRouter(route_class=FastJsonRoute, tags=["transfer"], dependencies=[Authorized])

NDJSON = "application/x-ndjson"


class ImportResponse(BaseModel):
    read: int = Field(description="Memories read from the file.")
    imported: int = Field(
        description="Memories that are new or newer here; 0 when the file was imported before."
    )
    links: int = Field(
        description="Links of the memory graph new here; 0 when the file was imported before."
    )
    namespaces: list[str] = Field(description="The namespaces written to.")


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={
        200: {"content": {NDJSON: {}}, "description": "The export file, a line per memory."},
        **responses(400, 401, 503),
    },
)
async def export_memories(
    caller: Caller,
    namespace: Requested,
    service: Service,
    all_namespaces: Annotated[
        bool, Query(description="Every namespace (an admin token for all of them only).")
    ] = False,
    include_deleted: Annotated[
        bool,
        Query(description="Deleted memories whose history is still kept too (time travel)."),
    ] = False,
) -> StreamingResponse:
    """Stream the caller's namespace (``X-Soma-Namespace``) as ``somamemory export`` writes
    it: a header line, then one memory with all its versions a line, then one link a line.
    Needs read access."""
    if all_namespaces:
        if not caller.may("admin") or caller.namespaces is not None:
            raise NotPermitted("exporting every namespace needs an admin token for all of them")
        chosen = None
    else:
        chosen = authorize(caller, namespace, "read")
    chunks = await service.export_stream(chosen, include_deleted=include_deleted)
    return StreamingResponse(chunks, media_type=NDJSON)


@router.post(
    "/import",
    response_model=ImportResponse,
    responses=responses(400, 401, 413, 503),
    openapi_extra={
        "requestBody": {
            "content": {NDJSON: {"schema": {"type": "string"}}},
            "description": "An export file: its header line, then a memory a line.",
            "required": True,
        }
    },
)
async def import_memories(
    request: Request,
    caller: Caller,
    service: Service,
    into: Annotated[
        str | None,
        Query(description="Write every memory into this namespace (a file of one namespace)."),
    ] = None,
) -> ImportResponse:
    """Import an export file (``GET /export``, ``somamemory export``), read as it arrives and
    written a batch at a time through the write path. Idempotent: versions keep their numbers
    and timestamps, so sending a file again changes nothing. Each namespace written needs write
    access (403, before anything of it is written). A file of a newer format version is refused
    (400). A bad line stops the import there; the batches before it stay written."""
    if into is not None:
        into = requested_namespace(into, into)

    def permit(namespace: str) -> None:
        authorize(caller, namespace, "write")

    if not caller.may("write"):
        raise NotPermitted(f"this token's role is {caller.role!r}; importing needs 'write'")
    done = await service.import_stream(request.stream(), permit=permit, into=into)
    return ImportResponse(
        read=done.read,
        imported=done.changed,
        links=done.links,
        namespaces=sorted(done.namespaces),
    )
