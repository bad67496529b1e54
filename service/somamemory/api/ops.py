"""Operational routes: stats, health, probes, metrics."""

from __future__ import annotations

import dataclasses
import logging

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ..reembed.rebuild import Progress
from .deps import Authorized, ReadNamespace, Service
from .errors import problem_response, responses
from .json_body import FastJsonRoute
from .schemas import (
    BackendHealth,
    EmbedderHealth,
    ErrorResponse,
    HealthResponse,
    ProbeResponse,
    ReembeddingHealth,
    StatsResponse,
)

log = logging.getLogger(__name__)
router = APIRouter(route_class=FastJsonRoute, tags=["operations"])


@router.get(
    "/stats",
    response_model=StatsResponse,
    responses=responses(400, 401, 503),
)
async def stats(namespace: ReadNamespace, service: Service) -> StatsResponse:
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
    responses={503: {"model": ErrorResponse, "description": "A required backend is down."}},
)
async def readyz(service: Service) -> Response:
    """Readiness: the canonical store and the vector store answer."""
    if not await service.ready():
        detail = "not ready: the canonical or the vector store does not answer; /health says which"
        return problem_response(503, detail, code="not_ready")
    return JSONResponse({"status": "ok"})


@router.get(
    "/health",
    response_model=HealthResponse,
    dependencies=[Authorized],
    responses=responses(401),
)
async def health(service: Service) -> HealthResponse:
    """Each backend's state and the degradation mode in force."""
    report = await service.health()
    return HealthResponse(
        kv_store=report.kv_store,
        vector_store=report.vector_store,
        graph_store=report.kv_store and service.graph.available,
        cache=report.cache,
        mode=report.mode,
        degraded=report.degraded,
        reconcile_backlog=report.reconcile_backlog,
        reconcile_parked=report.reconcile_parked,
        parked_examples=report.parked_examples,
        backends={
            name: BackendHealth(**dataclasses.asdict(state))
            for name, state in report.backends.items()
        },
        embedder=EmbedderHealth(**dataclasses.asdict(report.embedder)),
        reembedding=_reembedding(service.rebuild.progress()) if service.rebuild else None,
    )


def _reembedding(progress: Progress) -> ReembeddingHealth:
    source = progress.source
    return ReembeddingHealth.model_validate(
        {
            "from": dataclasses.asdict(source) if source is not None else None,
            "to": dataclasses.asdict(progress.target),
            "state": progress.state,
            "total": progress.total,
            "done": progress.done,
            "remaining": progress.remaining,
            "parked": progress.parked,
        }
    )


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus exposition."}},
)
async def metrics(request: Request) -> Response:
    """Prometheus metrics of this process."""
    body = generate_latest(request.app.state.metrics.registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
