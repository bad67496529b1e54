"""The operator's own Prometheus metrics (served only when a port is configured), and a gauge
set per SomaMemory read from the status each reconcile writes."""

from __future__ import annotations

import datetime
import threading
import time
from collections.abc import Iterator
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import REGISTRY, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from .crd import PHASES

RECONCILES = Counter(
    "somamemory_operator_reconciles_total",
    "Reconciles of SomaMemory objects by the phase they ended in (or error).",
    ["phase"],
)
RECONCILE_SECONDS = Histogram(
    "somamemory_operator_reconcile_seconds",
    "Time spent in one reconcile of a SomaMemory.",
)
INSTANCE_LABELS = ["namespace", "name"]


def _seconds_since(stamp: Any, now: float) -> float | None:
    """Seconds from an RFC 3339 time (as Kubernetes writes it) to ``now``; None if unreadable."""
    if not isinstance(stamp, str) or not stamp:
        return None
    try:
        when = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return max(0.0, now - when.timestamp())


class InstanceCollector(Collector):
    """Per-instance gauges, computed at scrape time from the last status seen of each.

    ``migration duration`` and ``last backup age`` are exported only for instances where they
    are known: ``status.migrationSeconds`` (the last migration Job, from its start and
    completion times) and ``status.lastBackupTime`` (an RFC 3339 time, written by each
    SomaMemoryBackup that succeeds: :mod:`.tasks`; absent until the first one)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._status: dict[tuple[str, str], dict[str, Any]] = {}
        self._retired: set[tuple[str, str]] = set()

    def observe(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        """Remember the status just written (or kept) for an instance (unless it is retired)."""
        with self._lock:
            if (namespace, name) not in self._retired:
                self._status[(namespace, name)] = dict(status)

    def retire(self, namespace: str, name: str) -> None:
        """Forget an instance whose loop stopped, and ignore what a reconcile still running in
        its thread observes after that, until :meth:`revive` (its loop starts again)."""
        with self._lock:
            self._retired.add((namespace, name))
            self._status.pop((namespace, name), None)

    def revive(self, namespace: str, name: str) -> None:
        """An instance's loop started: observe it again."""
        with self._lock:
            self._retired.discard((namespace, name))

    def forget(self, namespace: str, name: str) -> None:
        """Stop exporting an instance (deleted, or no longer reconciled by this replica)."""
        with self._lock:
            self._status.pop((namespace, name), None)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            seen = sorted(self._status.items())
        now = time.time()
        phase = GaugeMetricFamily(
            "somamemory_operator_instance_phase",
            "1 for the phase a SomaMemory is in, 0 for the others.",
            labels=[*INSTANCE_LABELS, "phase"],
        )
        ready = GaugeMetricFamily(
            "somamemory_operator_instance_ready_replicas",
            "Ready server pods of a SomaMemory.",
            labels=INSTANCE_LABELS,
        )
        desired = GaugeMetricFamily(
            "somamemory_operator_instance_desired_replicas",
            "Server pods a SomaMemory's Deployment asks for.",
            labels=INSTANCE_LABELS,
        )
        migration = GaugeMetricFamily(
            "somamemory_operator_instance_migration_duration_seconds",
            "Duration of the last schema migration Job of a SomaMemory (when known).",
            labels=INSTANCE_LABELS,
        )
        backup = GaugeMetricFamily(
            "somamemory_operator_instance_last_backup_age_seconds",
            "Seconds since the last backup of a SomaMemory completed (only when known).",
            labels=INSTANCE_LABELS,
        )
        for (namespace, name), status in seen:
            key = [namespace, name]
            for each in PHASES:
                phase.add_metric([*key, each], 1.0 if status.get("phase") == each else 0.0)
            ready.add_metric(key, float(status.get("readyReplicas") or 0))
            desired.add_metric(key, float(status.get("desiredReplicas") or 0))
            if isinstance(status.get("migrationSeconds"), int | float):
                migration.add_metric(key, float(status["migrationSeconds"]))
            if (age := _seconds_since(status.get("lastBackupTime"), now)) is not None:
                backup.add_metric(key, age)
        yield from (phase, ready, desired, migration, backup)


INSTANCES = InstanceCollector()
REGISTRY.register(INSTANCES)


def serve(port: int, addr: str = "0.0.0.0") -> WSGIServer:
    """Expose ``/metrics`` on ``port`` (0: any free one) in a background thread."""
    server, _thread = start_http_server(port, addr)
    return server


def stop(server: WSGIServer) -> None:
    """Stop serving and release the port."""
    server.shutdown()
    server.server_close()
