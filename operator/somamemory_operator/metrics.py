"""The operator's own Prometheus metrics (served only when a port is configured)."""

from __future__ import annotations

from wsgiref.simple_server import WSGIServer

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


def serve(port: int, addr: str = "0.0.0.0") -> WSGIServer:
    """Expose ``/metrics`` on ``port`` (0: any free one) in a background thread."""
    server, _thread = start_http_server(port, addr)
    return server


def stop(server: WSGIServer) -> None:
    """Stop serving and release the port."""
    server.shutdown()
    server.server_close()
