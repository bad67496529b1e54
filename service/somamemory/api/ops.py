"""Operational routes: stats, health, probes, metrics."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ..backends import Backends
from ..stores.outbox import ParkedVectors
from .deps import Authorized, Namespace, Service, bearer, require_token
from .errors import responses
from .schemas import BackendHealth, HealthResponse, ProbeResponse, StatsResponse

log = logging.getLogger(__name__)
router = APIRouter(tags=["operations"])
PING_TIMEOUT = 2.0


async def _ping(check: object) -> str | None:
    """None when the backend answers, else the reason it did not."""
    try:
        await asyncio.wait_for(check(), PING_TIMEOUT)  # type: ignore[operator]
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"[:300]
    return None


@router.get(
    "/stats",
    response_model=StatsResponse,
    dependencies=[Authorized],
    responses=responses(400, 401, 503),
)
async def stats(namespace: Namespace, service: Service) -> StatsResponse:
    """Counts of the caller's namespace: by type, and vectors."""
    counts, vector_count = await service.counts(namespace)
    return StatsResponse(
        namespace=namespace,
        total_memories=counts.total,
        episodic=counts.episodic,
        semantic=counts.semantic,
        vector_count=vector_count,
        namespaces={namespace: counts.total},
    )


@router.get("/healthz", response_model=ProbeResponse)
async def healthz() -> ProbeResponse:
    """Liveness: the process answers."""
    return ProbeResponse(status="ok")


@router.get(
    "/readyz",
    response_model=ProbeResponse,
    responses={503: {"model": ProbeResponse, "description": "A required backend is down."}},
)
async def readyz(request: Request) -> Response:
    """Readiness: the canonical store and the vector store answer."""
    backends: Backends = request.app.state.backends
    store_error, vector_error = await asyncio.gather(
        _ping(backends.store.ping), _ping(backends.vectors.ping)
    )
    if store_error or vector_error:
        return JSONResponse({"status": "unavailable"}, status_code=503)
    return JSONResponse({"status": "ok"})


@router.get(
    "/health",
    response_model=HealthResponse,
    dependencies=[Authorized],
    responses=responses(401),
)
async def health(request: Request) -> HealthResponse:
    """Each backend's state and the degradation mode in force."""
    backends: Backends = request.app.state.backends
    metrics = request.app.state.metrics
    store_error, vector_error = await asyncio.gather(
        _ping(backends.store.ping), _ping(backends.vectors.ping)
    )
    postgres_ok = backends.store.name == "postgres" and store_error is None
    redis_error = None
    if backends.redis_client is not None:
        redis_error = await _ping(backends.redis_client.ping)
    redis_ok = backends.redis != "down" and redis_error is None
    report = {
        "postgres": BackendHealth(ok=postgres_ok, kind=backends.postgres, detail=store_error),
        "redis": BackendHealth(ok=redis_ok, kind=backends.redis, detail=redis_error),
        "milvus": BackendHealth(
            ok=vector_error is None, kind=backends.milvus_uri_kind, detail=vector_error
        ),
    }
    for name, state in report.items():
        metrics.backend_up.labels(backend=name).set(1 if state.ok else 0)
    parked: ParkedVectors | None = None
    try:
        backlog: int | None = await asyncio.wait_for(backends.outbox.backlog(), PING_TIMEOUT)
        metrics.reconcile_backlog.set(backlog)
        parked = await asyncio.wait_for(backends.outbox.parked(), PING_TIMEOUT)
        metrics.reconcile_parked.set(parked.count)
    except Exception:
        backlog = None
    return HealthResponse(
        kv_store=store_error is None,
        vector_store=vector_error is None,
        graph_store=False,
        cache=backends.cache is not None,
        mode=backends.mode,
        degraded=backends.degraded,
        reconcile_backlog=backlog,
        reconcile_parked=parked.count if parked else None,
        parked_examples=parked.examples if parked else [],
        backends=report,
    )


async def _metrics_auth(request: Request) -> None:
    if request.app.state.settings.metrics_require_auth:
        await require_token(request, await bearer(request))


@router.get(
    "/metrics",
    response_class=Response,
    dependencies=[Depends(_metrics_auth)],
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus exposition."}},
)
async def metrics(request: Request) -> Response:
    """Prometheus metrics of this process."""
    body = generate_latest(request.app.state.metrics.registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
