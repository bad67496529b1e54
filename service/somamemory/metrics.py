"""Prometheus metrics, one registry per app (so tests can build many apps in one process)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class Metrics:
    """Every metric the service exports."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "somamemory_http_requests",
            "HTTP requests by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "somamemory_http_request_duration_seconds",
            "HTTP request latency by route template and method.",
            ["route", "method"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.backend_up = Gauge(
            "somamemory_backend_up",
            "1 when the backend answers, 0 when it does not.",
            ["backend"],
            registry=self.registry,
        )
        self.degraded_mode = Gauge(
            "somamemory_degraded_mode",
            "1 for the degradation mode in force, 0 for the others.",
            ["mode"],
            registry=self.registry,
        )
        self.cache_requests = Counter(
            "somamemory_cache_requests",
            "Cache look-ups by result (hit or miss).",
            ["result"],
            registry=self.registry,
        )
        self.vector_write_failures = Counter(
            "somamemory_vector_write_failures",
            "Vector writes or deletes that failed after the canonical commit.",
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "somamemory_batch_size",
            "Writes per group commit.",
            buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000),
            registry=self.registry,
        )
        self.batch_flush_seconds = Histogram(
            "somamemory_batch_flush_seconds",
            "Time to write one group commit (PostgreSQL, cache, Milvus).",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.reconcile_backlog = Gauge(
            "somamemory_reconcile_backlog",
            "Memories whose vector still has to be written or removed.",
            registry=self.registry,
        )
        self.reconcile_parked = Gauge(
            "somamemory_reconcile_parked",
            "Outbox entries the vector store refused too often: parked until written again.",
            registry=self.registry,
        )
        self.reembed_total = Gauge(
            "somamemory_reembed_total",
            "Memories enqueued for the new collection of a changed embedding model.",
            registry=self.registry,
        )
        self.reembed_remaining = Gauge(
            "somamemory_reembed_remaining",
            "Of them, vectors still owed before search switches to the new collection.",
            registry=self.registry,
        )
        self.reembed_switches = Counter(
            "somamemory_reembed_switches",
            "Switches of search to a rebuilt collection after the embedding model changed.",
            registry=self.registry,
        )

        self.memories_expired = Counter(
            "somamemory_memories_expired",
            "Expired memories the sweeper deleted.",
            registry=self.registry,
        )
        self.memories_evicted = Counter(
            "somamemory_memories_evicted",
            "Memories evicted from a namespace over its cap (SOMA_MAX_MEMORIES).",
            registry=self.registry,
        )

    def observe_batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.batch_flush_seconds.observe(seconds)

    def set_mode(self, mode: str, modes: tuple[str, ...]) -> None:
        for name in modes:
            self.degraded_mode.labels(mode=name).set(1 if name == mode else 0)


class MetricsMiddleware:
    """Pure ASGI middleware: count and time each request by its route template."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            self.metrics.requests.labels(template, method, str(status)).inc()
            self.metrics.latency.labels(template, method).observe(time.perf_counter() - started)
