"""The operator's own Prometheus metrics (served only when a port is configured)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram, start_http_server

RECONCILES = Counter(
    "somamemory_operator_reconciles_total",
    "Reconciles of SomaMemory objects by the phase they ended in (or error).",
    ["phase"],
)
RECONCILE_SECONDS = Histogram(
    "somamemory_operator_reconcile_seconds",
    "Time spent in one reconcile of a SomaMemory.",
)


def serve(port: int) -> None:
    """Expose ``/metrics`` on ``port`` in a background thread."""
    start_http_server(port)
