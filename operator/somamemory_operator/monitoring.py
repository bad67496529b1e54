"""Monitoring each instance gets when the Prometheus Operator runs in the cluster: a
ServiceMonitor on the server's ``/metrics``, a PrometheusRule of alerts (each with a runbook
line) and a Grafana dashboard ConfigMap (the sidecar's ``grafana_dashboard: "1"`` label).

The renderers are pure; :func:`converge` asks the API server's discovery, on every reconcile,
whether ``servicemonitors`` and ``prometheusrules`` of ``monitoring.coreos.com/v1`` are served,
so installing the Prometheus Operator later is noticed by the next reconcile. Without them
nothing is created. All three are owned by the SomaMemory (deleted with it) and removed when
``spec.monitoring.enabled`` is false.

The metric names are the service's (``somamemory/metrics.py``); the operator image does not
carry the service, so they are written here and a test checks them against the service.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from .children import apply, remove
from .kube import ApiError, Kube
from .manifests import Manifest, Meta, _digest, _metadata, selector

logger = logging.getLogger(__name__)

MONITORING_API = "monitoring.coreos.com/v1"

# The service's metrics, as Prometheus exposes them (counters with ``_total``).
REQUESTS = "somamemory_http_requests_total"  # labels: route, method, status
LATENCY_BUCKETS = "somamemory_http_request_duration_seconds_bucket"  # labels: route, method, le
DEGRADED_MODE = "somamemory_degraded_mode"  # labels: mode (1 for the mode in force)
NORMAL_MODE = "normal"  # the mode that is not degraded
BACKEND_UP = "somamemory_backend_up"  # labels: backend
RECONCILE_BACKLOG = "somamemory_reconcile_backlog"  # memories whose vector write is pending


def dashboard_name(meta: Meta) -> str:
    """The dashboard ConfigMap's name (the server's ConfigMap is named like the instance)."""
    return f"{meta['name']}-dashboard"


def _series(meta: Meta) -> str:
    """The label matchers of this instance's series: a ServiceMonitor's targets get
    ``job=<Service name>`` and ``namespace=<its namespace>``."""
    return f'job="{meta["name"]}", namespace="{meta["namespace"]}"'


def _metrics_require_auth(spec: dict[str, Any]) -> bool:
    """True when ``spec.env`` turns on SOMA_METRICS_REQUIRE_AUTH (a value, as pydantic reads it)."""
    for item in spec.get("env") or []:
        if item.get("name") == "SOMA_METRICS_REQUIRE_AUTH" and "value" in item:
            return str(item["value"]).strip().lower() in {"1", "true", "t", "yes", "y", "on"}
    return False


def service_monitor(meta: Meta, spec: dict[str, Any]) -> Manifest:
    """Scrape ``/metrics`` on the ``http`` port of the instance's Service.

    With SOMA_METRICS_REQUIRE_AUTH on, Prometheus sends the API token from
    ``spec.apiTokenSecretRef`` (the Secret is in the same namespace as the ServiceMonitor)."""
    monitoring = spec["monitoring"]
    endpoint: dict[str, Any] = {
        "port": "http",
        "path": "/metrics",
        "interval": monitoring["interval"],
        "scrapeTimeout": monitoring["scrapeTimeout"],
    }
    if _metrics_require_auth(spec):
        token = spec["apiTokenSecretRef"]
        endpoint["authorization"] = {
            "type": "Bearer",
            "credentials": {"name": token["name"], "key": token.get("key", "token")},
        }
    metadata = _metadata(meta, meta["name"], "monitoring")
    metadata["labels"] = {**monitoring["labels"], **metadata["labels"]}
    return {
        "apiVersion": MONITORING_API,
        "kind": "ServiceMonitor",
        "metadata": metadata,
        "spec": {
            "selector": {"matchLabels": selector(meta)},
            "namespaceSelector": {"matchNames": [meta["namespace"]]},
            "endpoints": [endpoint],
        },
    }


def _alert(
    name: str, expr: str, for_: str, severity: str, summary: str, description: str, runbook: str
) -> dict[str, Any]:
    return {
        "alert": name,
        "expr": expr,
        "for": for_,
        "labels": {"severity": severity},
        "annotations": {"summary": summary, "description": description, "runbook": runbook},
    }


def alerts(meta: Meta, spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The alerting rules of one instance; every expression is confined to its series."""
    sel = _series(meta)
    limits = spec["monitoring"]["alerts"]
    where = f"{meta['namespace']}/{meta['name']}"
    smem = f"kubectl -n {meta['namespace']} describe smem {meta['name']}"
    return [
        _alert(
            "SomaMemoryDegradedMode",
            f'max by (mode) ({DEGRADED_MODE}{{{sel}, mode!="{NORMAL_MODE}"}}) > 0',
            "5m",
            "warning",
            "SomaMemory runs in a degraded mode",
            f"{where} has run in degraded mode {{{{ $labels.mode }}}} for 5 minutes.",
            "A backend is unreachable: GET /health names it. Restore PostgreSQL, Redis or Milvus "
            f"(see {BACKEND_UP}); the service returns to normal mode by itself.",
        ),
        _alert(
            "SomaMemoryReconcileBacklog",
            f"max({RECONCILE_BACKLOG}{{{sel}}}) > {limits['reconcileBacklog']}",
            "15m",
            "warning",
            "Memories wait for their vector write",
            f"{where}: {{{{ $value }}}} memories have waited for Milvus for 15 minutes.",
            "Check that Milvus is reachable and healthy; the backlog drains by itself once it "
            "is. If it does not, rebuild the index from PostgreSQL with `somamemory reindex`.",
        ),
        _alert(
            "SomaMemoryHighErrorRatio",
            f'sum(rate({REQUESTS}{{{sel}, status=~"5.."}}[5m]))\n'
            f"  / sum(rate({REQUESTS}{{{sel}}}[5m])) > {limits['errorRatio']}",
            "10m",
            "critical",
            "SomaMemory answers too many 5xx",
            f"{where}: {{{{ $value | humanizePercentage }}}} of requests failed with 5xx "
            f"(threshold {limits['errorRatio']}).",
            f"Read the server logs (kubectl -n {meta['namespace']} logs -l "
            f"app.kubernetes.io/instance={meta['name']}) and `{smem}`; most 5xx come from an "
            "unreachable backend.",
        ),
        _alert(
            "SomaMemoryHighLatencyP99",
            "histogram_quantile(0.99,\n"
            f"  sum by (le, route) (rate({LATENCY_BUCKETS}{{{sel}}}[5m]))\n"
            f") > {limits['latencyP99Seconds']}",
            "10m",
            "warning",
            "SomaMemory p99 latency is high",
            f"{where}: p99 of route {{{{ $labels.route }}}} is {{{{ $value | humanizeDuration }}}}"
            f" (threshold {limits['latencyP99Seconds']}s).",
            "Check CPU throttling and the backends' latency; add replicas (spec.replicas or "
            "spec.autoscaling) or resources (spec.resources) if the pods are saturated.",
        ),
        _alert(
            "SomaMemoryBackendDown",
            f"min by (backend) ({BACKEND_UP}{{{sel}}}) == 0",
            "5m",
            "critical",
            "A SomaMemory backend is unreachable",
            f"{where}: backend {{{{ $labels.backend }}}} has been down for 5 minutes.",
            "Restore the named backend or fix its address and credentials in the SomaMemory's "
            f"spec; `{smem}` shows what the operator sees.",
        ),
    ]


def prometheus_rule(meta: Meta, spec: dict[str, Any]) -> Manifest:
    """The alerts as a PrometheusRule, labelled for the Prometheus's ``ruleSelector``."""
    metadata = _metadata(meta, meta["name"], "monitoring")
    metadata["labels"] = {**spec["monitoring"]["labels"], **metadata["labels"]}
    group = {"name": f"somamemory.{meta['namespace']}.{meta['name']}", "rules": alerts(meta, spec)}
    return {
        "apiVersion": MONITORING_API,
        "kind": "PrometheusRule",
        "metadata": metadata,
        "spec": {"groups": [group]},
    }


def _panel(
    number: int, title: str, unit: str, targets: list[tuple[str, str]], width: int = 12
) -> dict[str, Any]:
    return {
        "id": number,
        "type": "timeseries",
        "title": title,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"x": (number - 1) % 2 * 12, "y": (number - 1) // 2 * 8, "w": width, "h": 8},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [
            {"refId": chr(ord("A") + i), "expr": expr, "legendFormat": legend}
            for i, (expr, legend) in enumerate(targets)
        ],
    }


def dashboard_json(meta: Meta) -> dict[str, Any]:
    """A Grafana dashboard of this instance: requests, errors, latency, backlog, modes."""
    sel = _series(meta)
    buckets = f"sum by (le) (rate({LATENCY_BUCKETS}{{{sel}}}[5m]))"
    panels = [
        _panel(
            1,
            "Requests per second by route and status",
            "reqps",
            [(f"sum by (route, status) (rate({REQUESTS}{{{sel}}}[5m]))", "{{route}} {{status}}")],
        ),
        _panel(
            2,
            "5xx error ratio",
            "percentunit",
            [
                (
                    f'sum(rate({REQUESTS}{{{sel}, status=~"5.."}}[5m])) / '
                    f"sum(rate({REQUESTS}{{{sel}}}[5m]))",
                    "5xx",
                )
            ],
        ),
        _panel(
            3,
            "Latency p50 / p99",
            "s",
            [
                (f"histogram_quantile(0.5, {buckets})", "p50"),
                (f"histogram_quantile(0.99, {buckets})", "p99"),
            ],
        ),
        _panel(
            4,
            "Reconcile backlog (memories awaiting their vector write)",
            "short",
            [(f"max({RECONCILE_BACKLOG}{{{sel}}})", "backlog")],
        ),
        _panel(
            5,
            "Degraded mode (1: in force)",
            "short",
            [(f"max by (mode) ({DEGRADED_MODE}{{{sel}}})", "{{mode}}")],
        ),
        _panel(
            6,
            "Backends up (1) / down (0)",
            "short",
            [(f"min by (backend) ({BACKEND_UP}{{{sel}}})", "{{backend}}")],
        ),
    ]
    return {
        "uid": f"somamemory-{_digest(meta['namespace'], meta['name'], size=16)}",
        "title": f"SomaMemory {meta['namespace']}/{meta['name']}",
        "tags": ["somamemory"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {
            "list": [
                {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Data"}
            ]
        },
        "panels": panels,
    }


def dashboard(meta: Meta, spec: dict[str, Any]) -> Manifest:
    """The dashboard as a ConfigMap, labelled for Grafana's sidecar."""
    metadata = _metadata(meta, dashboard_name(meta), "dashboard")
    metadata["labels"] = {**spec["monitoring"]["dashboard"]["labels"], **metadata["labels"]}
    text = json.dumps(dashboard_json(meta), indent=1, sort_keys=True)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata,
        "data": {"somamemory.json": text},
    }


def served(kube: Kube) -> set[str]:
    """Which of ServiceMonitor and PrometheusRule the API server serves now."""
    resources = kube.served(MONITORING_API)
    kinds = {"servicemonitors": "ServiceMonitor", "prometheusrules": "PrometheusRule"}
    return {kind for plural, kind in kinds.items() if plural in resources}


def desired(meta: Meta, spec: dict[str, Any], kinds: set[str]) -> dict[str, Manifest | None]:
    """kind -> the manifest wanted, or None for one to remove; only for the served kinds.

    The dashboard reads the series the ServiceMonitor scrapes: it comes with it."""
    on = spec["monitoring"]["enabled"]
    out: dict[str, Manifest | None] = {}
    if "ServiceMonitor" in kinds:
        out["ServiceMonitor"] = service_monitor(meta, spec) if on else None
        show = on and spec["monitoring"]["dashboard"]["enabled"]
        out["ConfigMap"] = dashboard(meta, spec) if show else None
    if "PrometheusRule" in kinds:
        out["PrometheusRule"] = prometheus_rule(meta, spec) if on else None
    return out


def converge(kube: Kube, owner: dict[str, Any], meta: Meta, spec: dict[str, Any]) -> None:
    """Create, update or remove the instance's monitoring. Best effort: a refusal (say, RBAC
    without monitoring.coreos.com) is logged and never blocks the instance itself."""
    try:
        kinds = served(kube)
    except ApiError as exc:
        logger.warning("monitoring of %s/%s: discovery failed: %s", *_where(meta), exc)
        return
    for kind, manifest in desired(meta, spec, kinds).items():
        name = dashboard_name(meta) if kind == "ConfigMap" else str(meta["name"])
        try:
            if manifest is None:
                remove(kube, kind, meta["namespace"], name)
            else:
                apply(kube, owner, manifest)
        except ApiError as exc:
            logger.warning("monitoring of %s/%s: %s not applied: %s", *_where(meta), kind, exc)


def _where(meta: Meta) -> tuple[str, str]:
    return meta["namespace"], meta["name"]
