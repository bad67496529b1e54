"""Admission control: a bounded number of requests run, a bounded queue waits, the rest get 503.

Under more load than the machine can serve, letting every request in only makes each one slower
until clients time out. This pure ASGI middleware lets ``max_inflight`` requests run at once;
the next ones wait, first come first served, in a queue of at most ``max_queued`` for at most
``queue_timeout`` seconds; beyond that a request is answered at once with 503, a
``Retry-After`` header and the service's usual ``{"detail": ...}`` body, before its body is read.
A request that was admitted always runs to its answer: nothing admitted is dropped.

The probes and ``/metrics`` are never queued or refused: an overloaded replica is still alive,
and its metrics are how one sees the overload.
"""

from __future__ import annotations

import asyncio
import collections
from dataclasses import dataclass

from prometheus_client import Counter, Gauge
from starlette.types import ASGIApp, Receive, Scope, Send

from ..metrics import Metrics
from .gate import _refuse

UNQUEUED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


@dataclass(frozen=True, slots=True)
class AdmissionLimits:
    """The numbers, from the settings."""

    max_inflight: int
    max_queued: int
    queue_timeout: float
    retry_after_seconds: int


class _AdmissionMetrics:
    """In flight, queued and refused, on the app's registry."""

    def __init__(self, metrics: Metrics) -> None:
        self.inflight = Gauge(
            "somamemory_http_inflight_requests",
            "Requests admitted and running now (at most SOMA_MAX_INFLIGHT).",
            registry=metrics.registry,
        )
        self.queued = Gauge(
            "somamemory_http_queued_requests",
            "Requests waiting for admission now (at most SOMA_MAX_QUEUED).",
            registry=metrics.registry,
        )
        self.refused = Counter(
            "somamemory_http_refused_requests",
            "Requests answered 503 by admission control: queue full, or waited too long.",
            ["reason"],
            registry=metrics.registry,
        )
        for reason in ("queue_full", "queue_timeout"):
            self.refused.labels(reason=reason)  # exported at 0 from the start


class Admission:
    """At most ``max_inflight`` requests at once, a bounded queue, then 503 with Retry-After."""

    def __init__(self, app: ASGIApp, *, limits: AdmissionLimits, metrics: Metrics) -> None:
        self.app = app
        self.limits = limits
        self.metrics = _AdmissionMetrics(metrics)
        self._running = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNQUEUED_PATHS:
            await self.app(scope, receive, send)
            return
        refusal = await self._acquire()
        if refusal is not None:
            self.metrics.refused.labels(reason=refusal).inc()
            seconds = self.limits.retry_after_seconds
            detail = (
                "the service is at capacity (too many requests queued)"
                if refusal == "queue_full"
                else f"the service is at capacity (queued over {self.limits.queue_timeout:g} s)"
            )
            await _refuse(
                send, 503, f"{detail}; retry in {seconds} s", [(b"retry-after", b"%d" % seconds)]
            )
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self._release()

    async def _acquire(self) -> str | None:
        """Take a slot, waiting in the queue if need be; the reason for a refusal otherwise."""
        if self._running < self.limits.max_inflight and not self._waiters:
            self._take()
            return None
        if len(self._waiters) >= self.limits.max_queued:
            return "queue_full"
        slot: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(slot)
        self.metrics.queued.inc()
        try:
            # asyncio.wait never cancels ``slot``: a slot handed over as time runs out is kept
            await asyncio.wait((slot,), timeout=self.limits.queue_timeout)
        except BaseException:
            self._leave(slot)
            raise
        if slot.done():
            return None  # _release handed its slot over: _running already counts this request
        self._leave(slot)
        return "queue_timeout"

    def _leave(self, slot: asyncio.Future[None]) -> None:
        """Give up waiting; a slot handed over meanwhile goes to the next in line."""
        if slot.done():
            self._release()
            return
        slot.cancel()
        self._waiters.remove(slot)
        self.metrics.queued.dec()

    def _take(self) -> None:
        self._running += 1
        self.metrics.inflight.inc()

    def _release(self) -> None:
        """Hand the slot to the first waiter, or free it."""
        if self._waiters:
            self._waiters.popleft().set_result(None)
            self.metrics.queued.dec()
            return  # the slot changes hands: in flight stays the same
        self._running -= 1
        self.metrics.inflight.dec()
