"""ServiceMonitor, PrometheusRule and the Grafana dashboard (CRDs: checked by structure)."""

from __future__ import annotations

import json
from collections.abc import Callable

from tests.chart.helm import CHART, Manifest, one

METRICS = {
    "somamemory_http_requests_total",
    "somamemory_http_request_duration_seconds_bucket",
    "somamemory_backend_up",
    "somamemory_degraded_mode",
    "somamemory_reconcile_backlog",
}


def test_service_monitor_scrapes_metrics_of_the_api_service(
    render: Callable[..., list[Manifest]],
) -> None:
    docs = render("monitoring")
    monitor = one(docs, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    service = one(docs, "Service", "soma-somamemory")
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["memory"]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("http", "/metrics")


def test_prometheus_rule_alerts_on_what_operators_need(
    render: Callable[..., list[Manifest]],
) -> None:
    rule = one(render("monitoring"), "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    (group,) = rule["spec"]["groups"]
    alerts = {r["alert"]: r for r in group["rules"]}
    assert set(alerts) == {
        "SomaMemoryDown",
        "SomaMemoryHighErrorRatio",
        "SomaMemoryHighLatencyP99",
        "SomaMemoryBackendDown",
        "SomaMemoryDegradedMode",
        "SomaMemoryReconcileBacklog",
    }
    for name, alert in alerts.items():
        assert alert["labels"]["severity"] in {"warning", "critical"}, name
        assert alert["annotations"]["summary"] and alert["annotations"]["description"], name
        assert alert["for"].endswith("m"), name
        assert 'job="soma-somamemory", namespace="memory"' in alert["expr"], name
    assert 'status=~"5.."' in alerts["SomaMemoryHighErrorRatio"]["expr"]
    assert "histogram_quantile(0.99" in alerts["SomaMemoryHighLatencyP99"]["expr"]
    assert "{{ $labels.route }}" in alerts["SomaMemoryHighLatencyP99"]["annotations"]["description"]
    # the gauge is 1 for the mode in force, "normal" included: only other modes alert
    assert 'mode!="normal"' in alerts["SomaMemoryDegradedMode"]["expr"]
    expressions = " ".join(a["expr"] for a in alerts.values())
    for metric in METRICS:
        assert metric in expressions, metric


def test_grafana_dashboard_is_valid_json_over_the_service_metrics(
    render: Callable[..., list[Manifest]],
) -> None:
    config_map = one(render("monitoring"), "ConfigMap", "soma-somamemory-dashboard")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(config_map["data"]["somamemory.json"])
    assert dashboard == json.loads((CHART / "dashboards" / "somamemory.json").read_text())
    expressions = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    for metric in METRICS:
        assert metric in expressions, metric
