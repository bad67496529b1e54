"""``/mcp``: the memory as Model Context Protocol tools, for agents (streamable HTTP).

Five tools, remember, recall, fetch, forget and link, each one call of ``MemoryService``, the
same calls the REST routes make. The endpoint sits behind the same middleware as every route:
the auth gate (401 without a valid token, the per-token rate limit) and admission control.
Each tool then checks the caller's token against the namespace of the ``X-Soma-Namespace``
header with the REST API's own checks (``deps.authorize``), so a read token cannot write and a
token scoped to namespaces cannot leave them. Refusals and bad input come back as MCP tool
errors that carry the service's message, never as a protocol failure.

Stateless, with JSON answers: every MCP message is one short POST, so any replica or worker can
answer it, no session lives in a process, and no open stream holds an admission slot.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, TypeVar

from fastapi import FastAPI
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import ToolAnnotations
from pydantic import Field
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from .. import __version__
from ..errors import SomaError
from ..models import MemoryType
from ..principals import Principal, Role
from ..search_fusion import SearchMode
from ..service import MemoryService
from .deps import MISSING_TOKEN, authorize, requested_namespace
from .errors import status_of
from .gate import _refuse
from .graph_schemas import LinkResponse
from .schemas import DeleteResponse, FilterClause, MemoryOut, SearchResponse, StoreResponse

log = logging.getLogger(__name__)
PATH = "/mcp"
T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

INSTRUCTIONS = (
    "Long-term memory for this agent. Every memory sits at a coordinate (comma-separated "
    "numbers, e.g. '1,2,3') in the namespace of the connection. Use 'recall' to find memories "
    "by meaning before answering from past knowledge, 'remember' to keep something worth "
    "knowing later, 'fetch' to read one memory by its coordinate, 'forget' to delete one, and "
    "'link' to relate two memories."
)

Coord = Annotated[
    str,
    Field(
        description="The memory's coordinate: 1 to 64 comma-separated finite numbers, "
        "e.g. '1,2,3'. The service normalises it ('1' is '1.0').",
        max_length=4096,
    ),
]


# ----- reaching the service as the caller ----------------------------------------------------


def _as_caller(ctx: Context, role: Role) -> tuple[MemoryService, str]:
    """The service and the namespace this call may use with ``role`` (the REST API's checks)."""
    request: Request | None = ctx.request_context.request
    if request is None:  # only the HTTP transport carries a caller; this module serves no other
        raise ToolError("this MCP server answers over HTTP only")
    principal: Principal | None = request.scope.get("state", {}).get("principal")
    if principal is None:  # the auth gate sets it on every path it does not leave public
        raise ToolError(f"unauthorized (401): {MISSING_TOKEN}")
    default: str = request.app.state.settings.namespace
    try:
        namespace = requested_namespace(request.headers.get("x-soma-namespace"), default)
        authorize(principal, namespace, role)
    except SomaError as exc:
        raise _tool_error(exc) from exc
    service: MemoryService = request.app.state.service
    return service, namespace


async def _answer(call: Awaitable[T]) -> T:
    """The service's answer, or a tool error with its code, status and message."""
    try:
        return await call
    except SomaError as exc:
        raise _tool_error(exc) from exc


def _tool_error(exc: SomaError) -> ToolError:
    """What the REST API would answer, as a tool error: ``forbidden (403): <detail>``."""
    status, code = status_of(exc)
    if status == 500:
        log.error("unmapped service error in an MCP tool: %r", exc)
        return ToolError("internal_error (500): the service log has the details")
    if status == 503:
        log.warning("backend unavailable: %s", exc)
    return ToolError(f"{code} ({status}): {exc}")


# ----- the tools -------------------------------------------------------------------------------

# what each tool does to the memory, for clients that ask before a destructive call
READS = ToolAnnotations(read_only_hint=True, open_world_hint=False)
WRITES = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)
DELETES = ToolAnnotations(
    read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False
)
LINKS = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False
)


def build_server() -> MCPServer:
    """The MCP server and its tools (no transport yet)."""
    # MCPServer() calls logging.basicConfig (a rich handler on the root logger, level INFO) when
    # nothing has configured logging yet; logging is the service's (logs.py), so a placeholder
    # handler makes that call a no-op
    root, placeholder = logging.getLogger(), logging.NullHandler()
    root.addHandler(placeholder)
    try:
        server: MCPServer = MCPServer(
            "somamemory",
            title="SomaMemory",
            description="Memory service for AI agents: store, recall, read, delete and link "
            "memories.",
            instructions=INSTRUCTIONS,
            version=__version__,
        )
    finally:
        root.removeHandler(placeholder)

    def tool(title: str, hints: ToolAnnotations) -> Callable[[F], F]:
        """Register ``fn`` as a tool, its docstring on one line as the description."""

        def register(fn: F) -> F:
            description = " ".join((fn.__doc__ or "").split())
            server.add_tool(fn, title=title, description=description, annotations=hints)
            return fn

        return register

    @tool("Remember", WRITES)
    async def remember(
        ctx: Context,
        coord: Coord,
        payload: Annotated[
            dict[str, Any],
            Field(
                description='The memory: any JSON object, e.g. {"text": "The user prefers '
                'green tea", "topic": "preferences"}. Its text fields are embedded for '
                "recall; top-level fields can be filtered on."
            ),
        ],
        memory_type: Annotated[
            MemoryType,
            Field(description="'episodic' (something that happened) or 'semantic' (a fact)."),
        ] = "episodic",
        importance: Annotated[
            float, Field(description="How much it matters; any finite number.", allow_inf_nan=False)
        ] = 0.0,
        ttl_seconds: Annotated[
            int | None,
            Field(
                description="Forget it after this many seconds (default: never, or the "
                "service's default for the memory type)."
            ),
        ] = None,
    ) -> StoreResponse:
        """Store a memory at a coordinate (requires a write token). Storing again at the same
        coordinate replaces the memory and increments its version. Answers once the memory is
        durable; 'indexed' says whether it can be recalled already."""
        service, namespace = _as_caller(ctx, "write")
        memory, indexed = await _answer(
            service.store_memory(
                namespace,
                coord,
                payload,
                memory_type=memory_type,
                importance=importance,
                ttl_seconds=ttl_seconds,
            )
        )
        return StoreResponse(
            coord=memory.coord,
            memory_type=memory.memory_type,
            ok=True,
            namespace=namespace,
            version=memory.version,
            indexed=indexed,
        )

    @tool("Recall", READS)
    async def recall(
        ctx: Context,
        query: Annotated[
            str,
            Field(
                description="What to look for, in words: a question, a topic, a name or an id.",
                max_length=8192,
            ),
        ],
        top_k: Annotated[
            int,
            Field(
                description="How many memories at most, best first (the service's limit, "
                "SOMA_MAX_TOP_K, is 100 unless configured otherwise).",
                ge=1,
                le=16384,
            ),
        ] = 10,
        filters: Annotated[
            dict[str, FilterClause] | None,
            Field(
                description="Only memories whose fields match; every key must hold. A field is "
                "a top-level payload field, or memory_type, importance, version, created_at, "
                'updated_at. A value means equality ({"topic": "preferences"}), a list '
                'membership ({"topic": ["work", "travel"]}), an object operators: '
                '{"importance": {"$gte": 0.5}}, $eq $ne $gt $gte $lt $lte $in $nin $exists; '
                "combine with $and / $or (lists of filters) and $not.",
            ),
        ] = None,
        memory_type: Annotated[
            MemoryType | list[MemoryType] | None,
            Field(description="Only 'episodic' or 'semantic' memories (or a list of both)."),
        ] = None,
        mode: Annotated[
            SearchMode | None,
            Field(
                description="'hybrid' (the default): meaning and exact words together; "
                "'vector': by meaning alone; 'keyword': by the words of the payload alone."
            ),
        ] = None,
    ) -> SearchResponse:
        """Find the memories that best match a query, best first, each with its coordinate,
        payload and score (higher is closer). Recall before answering from past knowledge."""
        service, namespace = _as_caller(ctx, "read")
        found = await _answer(
            service.search_ranked(
                namespace,
                query=query,
                top_k=top_k,
                filters=filters,
                memory_type=memory_type,
                mode=mode,
            )
        )
        return SearchResponse.of([(hit.memory, hit.score) for hit in found.hits], ranked=found)

    @tool("Fetch", READS)
    async def fetch(ctx: Context, coord: Coord) -> MemoryOut:
        """Read the memory at a coordinate: its payload, type, importance and version. Fails
        with not found (404) when no memory is there."""
        service, namespace = _as_caller(ctx, "read")
        return MemoryOut.model_validate_json(
            await _answer(service.get_memory_json(namespace, coord))
        )

    @tool("Forget", DELETES)
    async def forget(ctx: Context, coord: Coord) -> DeleteResponse:
        """Delete the memory at a coordinate with all its versions and links (requires a write
        token). Forgetting what is not there is fine: 'deleted' is then false."""
        service, namespace = _as_caller(ctx, "write")
        receipt = await _answer(service.delete_memory(namespace, coord))
        return DeleteResponse.model_validate(
            {
                "coord": receipt.coord,
                "deleted": receipt.deleted,
                "receipt": {
                    "canonical": receipt.canonical,
                    "cache": receipt.cache,
                    "vector": receipt.vector,
                },
            }
        )

    @tool("Link", LINKS)
    async def link(
        ctx: Context,
        from_coord: Annotated[str, Field(description="The memory the link starts from.")],
        to_coord: Annotated[str, Field(description="The memory it points to.")],
        link_type: Annotated[
            str,
            Field(
                description="What the link means, e.g. 'related', 'caused_by', 'follows': "
                "1-64 letters, digits, '_', '.', ':' or '-'."
            ),
        ] = "related",
        strength: Annotated[
            float,
            Field(
                description="Any finite number; walks prefer stronger links.", allow_inf_nan=False
            ),
        ] = 1.0,
        metadata: Annotated[
            dict[str, Any] | None,
            Field(description="Any JSON object about the link, up to 16 KiB."),
        ] = None,
    ) -> LinkResponse:
        """Link two memories of the namespace (requires a write token). Both must exist (not
        found, 404, otherwise). Linking the same two memories again with the same type updates
        the link's strength and metadata."""
        service, namespace = _as_caller(ctx, "write")
        made = await _answer(
            service.graph.link(
                namespace, from_coord, to_coord, link_type, strength=strength, metadata=metadata
            )
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

    return server


# ----- the endpoint ------------------------------------------------------------------------------


class McpEndpoint:
    """The ASGI app at ``/mcp``: a stateless streamable-HTTP transport, running while the app
    runs (``running()`` in its lifespan; a session manager runs once, so each run builds one)."""

    def __init__(self, *, max_request_bytes: int) -> None:
        self.server = build_server()
        self.max_request_bytes = max_request_bytes
        self._manager: StreamableHTTPSessionManager | None = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        self.server.streamable_http_app(
            stateless_http=True,
            json_response=True,
            max_request_body_size=self.max_request_bytes,
            # the auth gate already keeps a token-less service to loopback hosts (DNS rebinding)
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        manager = self.server.session_manager
        async with manager.run():
            self._manager = manager
            try:
                yield
            finally:
                self._manager = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] != "POST":
            # stateless: no session to resume or delete and no server-initiated stream (GET)
            detail = f"{scope['method']} is not allowed on {PATH}; MCP clients POST here"
            await _refuse(send, 405, detail, [(b"allow", b"POST")])
            return
        if self._manager is None:
            await _refuse(send, 503, "the MCP endpoint is starting or stopping; retry", [])
            return
        await self._manager.handle_request(scope, receive, send)

    def mount(self, app: FastAPI) -> None:
        """Serve at ``/mcp`` (exactly: no redirect to ``/mcp/``), outside the OpenAPI document."""
        app.router.routes.append(Route(PATH, self, include_in_schema=False))
