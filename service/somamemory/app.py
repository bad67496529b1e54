"""The app factory: ``create_app(settings)`` wires every backend inside the lifespan."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from . import __version__
from .api import admin, batch, graph, memories, ops, policies, search, transfer
from .api.admission import Admission, AdmissionLimits
from .api.body_limit import BodyLimit
from .api.errors import install_error_handlers
from .api.gate import AuthGate
from .api.mcp import McpEndpoint
from .api.startup_failure import PlainStartupFailure
from .errors import StartupError
from .metrics import Metrics, MetricsMiddleware
from .runtime import running
from .settings import Settings

log = logging.getLogger(__name__)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _token(settings: Settings) -> bytes | None:
    # surrounding whitespace (a trailing newline from a Secret file) is never part of a token
    if settings.api_token is not None and settings.api_token.get_secret_value().strip():
        return settings.api_token.get_secret_value().strip().encode()
    if settings.allow_unauthenticated and _is_loopback(settings.host):
        log.warning("running WITHOUT authentication (SOMA_ALLOW_UNAUTHENTICATED on loopback)")
        return None
    raise StartupError(
        "no SOMA_API_TOKEN set: set one, or set SOMA_ALLOW_UNAUTHENTICATED=1 with a loopback host"
    )


def _admission_limits(settings: Settings) -> AdmissionLimits:
    if settings.max_inflight + settings.max_queued >= settings.http_max_concurrency:
        log.warning(
            "SOMA_MAX_INFLIGHT + SOMA_MAX_QUEUED >= SOMA_HTTP_MAX_CONCURRENCY: past the latter"
            " the server refuses with a plain 503 and no Retry-After"
        )
    return AdmissionLimits(
        max_inflight=settings.max_inflight,
        max_queued=settings.max_queued,
        queue_timeout=settings.queue_timeout_seconds,
        retry_after_seconds=settings.overload_retry_after_seconds,
    )


def create_app(settings: Settings) -> FastAPI:
    """A SomaMemory app for these settings; backends open on startup and close on shutdown."""
    token = _token(settings)
    metrics = Metrics()
    mcp = McpEndpoint(max_request_bytes=settings.max_request_bytes)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with running(settings, metrics) as runtime:
            app.state.backends = runtime.backends
            app.state.service = runtime.service
            async with mcp.running():  # stops taking MCP calls before the backends close
                yield

    app = FastAPI(
        title="SomaMemory",
        version=__version__,
        description="Memory service for AI agents: store, read and recall memories.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.api_token = token
    app.state.metrics = metrics
    install_error_handlers(app)
    app.include_router(search.router)  # before /memories/{coord}
    app.include_router(batch.router)
    app.include_router(memories.router)
    app.include_router(graph.router)
    app.include_router(ops.router)
    app.include_router(admin.router)
    app.include_router(policies.router)  # /admin/namespaces/{namespace}/policy
    app.include_router(transfer.router)  # /export, /import
    mcp.mount(app)  # /mcp: the same tools for agents, behind the same gate and admission
    # admission sits inside the gate (a refused token never waits) and inside the metrics
    # middleware like the gate, so refused requests are counted too
    app.add_middleware(Admission, limits=_admission_limits(settings), metrics=metrics)
    # an authenticated request with a body over the limit: 413, before admission
    app.add_middleware(BodyLimit, max_bytes=settings.max_request_bytes)
    app.add_middleware(AuthGate, token=token, public_metrics=not settings.metrics_require_auth)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(PlainStartupFailure)  # outermost: it sees the lifespan's failure
    return app
