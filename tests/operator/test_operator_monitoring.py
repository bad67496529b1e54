"""Monitoring the operator creates: with the Prometheus Operator's CRDs served, each instance
gets a ServiceMonitor, a PrometheusRule and a Grafana dashboard ConfigMap, owned by it; without
them nothing is created and nothing fails. The alert and panel expressions name only metrics and
labels the service really exports (read from ``somamemory.metrics``, not copied here); no
promtool runs here, so each expression is checked for its metrics, label matchers, aggregation
labels and brackets. The operator's metrics endpoint serves a gauge set per instance."""

from __future__ import annotations

import json
import pathlib
import re
from typing import TYPE_CHECKING, Any

import kmock

from somamemory_operator import manifests, monitoring
from somamemory_operator.metrics import InstanceCollector
from somamemory_operator.spec import normalize
from tests.operator.conftest import OperatorThread, _write_kubeconfig, kopf_memo
from tests.operator.test_operator_lifecycle import (
    NAME,
    _create,
    _job,
    _ns,
    _phase_is,
    _ready,
    _roll_out,
    _spec,
)
from tests.operator.test_operator_observability import _scrape
from tests.support.k8s import validate_manifests

if TYPE_CHECKING:
    from tests.operator.conftest import Cluster, Operator

META = {"name": "memory", "namespace": "team-a", "uid": "0b7c3a56-0000-4000-8000-0000000000aa"}
TARGET_LABELS = {"job", "namespace"}  # what a ServiceMonitor's targets add to every series
FUNCTIONS = {"sum", "max", "min", "rate", "histogram_quantile"}
MONITORING = "monitoring.coreos.com/v1"


# ---- what the service exports, read from the service itself ----------------------------------


def _exported() -> dict[str, set[str]]:
    """Every sample name the service's registry exposes -> its label names."""
    from prometheus_client.metrics import MetricWrapperBase

    from somamemory.metrics import Metrics

    metrics = Metrics()
    for metric in vars(metrics).values():
        if isinstance(metric, MetricWrapperBase) and metric._labelnames:
            metric.labels(*["x"] * len(metric._labelnames))  # a child, so samples appear
    return {
        sample.name: set(sample.labels)
        for family in metrics.registry.collect()
        for sample in family.samples
    }


EXPORTED = _exported()
_SELECTOR = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^{}]*)\}")
_MATCHER = re.compile(r'^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*$')
_CALL = re.compile(r"\b([a-z_]+)\s*\(")
_BY = re.compile(r"\bby\s*\(([^)]*)\)")
_TEMPLATE_LABEL = re.compile(r"\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)")
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless"}


def _balanced(expr: str) -> bool:
    stack: list[str] = []
    pairs = {")": "(", "]": "[", "}": "{"}
    for char in re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr):
        if char in "([{":
            stack.append(char)
        elif char in pairs and (not stack or stack.pop() != pairs[char]):
            return False
    return not stack


def check_expression(expr: str, meta: dict[str, Any]) -> set[str]:
    """Fail unless ``expr`` reads only exported metrics and labels, scoped to the instance's
    series; return the metrics it reads."""
    assert _balanced(expr), expr
    selectors = _SELECTOR.findall(expr)
    assert selectors, expr
    names = set()
    for metric, matchers in selectors:
        assert metric in EXPORTED, f"{metric} is not a metric the service exports"
        names.add(metric)
        found = {}
        for matcher in matchers.split(","):
            parsed = _MATCHER.match(matcher)
            assert parsed, f"bad label matcher {matcher!r} in {expr}"
            label, op, value = parsed.groups()
            assert label in EXPORTED[metric] | TARGET_LABELS, f"{metric} has no label {label}"
            if "~" in op:
                re.compile(value)
            found[label] = (op, value)
        assert found["job"] == ("=", meta["name"]), expr  # this instance's series only
        assert found["namespace"] == ("=", meta["namespace"]), expr
    # every bare metric-like word is a selector's metric: nothing unscoped slips through
    bare = set(re.findall(r"\bsomamemory_[a-z0-9_]+\b", expr))
    assert bare == names, expr
    calls = {call for call in _CALL.findall(expr) if call not in _KEYWORDS}
    assert calls <= FUNCTIONS, calls - FUNCTIONS
    labels = set().union(*(EXPORTED[name] for name in names)) | TARGET_LABELS
    for grouping in _BY.findall(expr):
        for label in (part.strip() for part in grouping.split(",")):
            assert label in labels, f"by ({label}): no such label in {expr}"
    return names


def _spec_for(**monitoring_spec: Any) -> dict[str, Any]:
    return normalize(_spec(monitoring=monitoring_spec))


# ---- the rendered objects (pure) ---------------------------------------------------------------


def test_alerts_read_real_metrics_and_each_says_what_to_do() -> None:
    from somamemory.backends import MODES

    rule = monitoring.prometheus_rule(META, _spec_for(alerts={"errorRatio": 0.1}))
    (group,) = rule["spec"]["groups"]
    alerts = {a["alert"]: a for a in group["rules"]}
    read = {name: check_expression(a["expr"], META) for name, a in alerts.items()}
    # degraded mode, reconcile backlog, error rate and latency, named by the metrics they read
    metric = {family: f"somamemory_{family}" for family in ("degraded_mode", "reconcile_backlog")}
    assert {metric["degraded_mode"]} in read.values()
    assert {metric["reconcile_backlog"]} in read.values()
    errors = alerts["SomaMemoryHighErrorRatio"]["expr"]
    assert 'status=~"5.."' in errors and errors.rstrip().endswith("> 0.1")
    assert re.fullmatch("5..", "503") and not re.fullmatch("5..", "404")  # statuses are "503"
    latency = alerts["SomaMemoryHighLatencyP99"]["expr"]
    assert "histogram_quantile(0.99," in latency and "le" in _BY.findall(latency)[0]
    assert read["SomaMemoryHighLatencyP99"] == {
        name for name in EXPORTED if name.endswith("_duration_seconds_bucket")
    }
    degraded = alerts["SomaMemoryDegradedMode"]["expr"]
    assert f'mode!="{monitoring.NORMAL_MODE}"' in degraded and monitoring.NORMAL_MODE in MODES
    for name, alert in alerts.items():
        notes = alert["annotations"]
        assert notes["summary"] and notes["description"] and notes["runbook"], name
        assert "\n" not in notes["runbook"], name  # one line saying what to do
        assert alert["labels"]["severity"] in {"warning", "critical"}, name
        assert re.fullmatch(r"[0-9]+m", alert["for"]), name
        # a $labels.X in the text must survive the expression's aggregation
        kept = {label.strip() for g in _BY.findall(alert["expr"]) for label in g.split(",")}
        for label in _TEMPLATE_LABEL.findall(notes["description"]):
            assert label in kept - {"le"}, (name, label)
    labels = rule["metadata"]["labels"]
    assert labels["app.kubernetes.io/instance"] == META["name"]


def test_service_monitor_scrapes_metrics_of_the_instances_service() -> None:
    spec = _spec_for(labels={"release": "kube-prometheus-stack"}, interval="15s")
    monitor = monitoring.service_monitor(META, spec)
    service = manifests.service(META, spec)
    assert monitor["apiVersion"] == MONITORING and monitor["kind"] == "ServiceMonitor"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [META["namespace"]]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert (endpoint["path"], endpoint["interval"]) == ("/metrics", "15s")
    assert "authorization" not in endpoint  # /metrics is public unless the service says not
    guarded = _spec(env=[{"name": "SOMA_METRICS_REQUIRE_AUTH", "value": "true"}])
    (endpoint,) = monitoring.service_monitor(META, normalize(guarded))["spec"]["endpoints"]
    assert endpoint["authorization"] == {
        "type": "Bearer",
        "credentials": {"name": "soma-token", "key": "token"},  # spec.apiTokenSecretRef
    }


def test_dashboard_is_a_sidecar_configmap_of_panels_over_real_metrics() -> None:
    config_map = monitoring.dashboard(META, _spec_for())
    validate_manifests([config_map])
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    (text,) = config_map["data"].values()
    board = json.loads(text)
    assert META["name"] in board["title"] and len(board["uid"]) <= 40
    read = [
        check_expression(target["expr"], META)
        for panel in board["panels"]
        for target in panel["targets"]
    ]
    titles = " ".join(panel["title"].lower() for panel in board["panels"])
    for topic in ("requests", "error", "latency", "backlog", "degraded"):
        assert topic in titles, topic
    assert set().union(*read) >= {
        "somamemory_http_requests_total",
        "somamemory_degraded_mode",
        "somamemory_reconcile_backlog",
    }
    custom = monitoring.dashboard(META, _spec_for(dashboard={"labels": {"dash": "yes"}}))
    assert custom["metadata"]["labels"]["dash"] == "yes"


def test_disabled_monitoring_renders_removals_and_absent_crds_render_nothing() -> None:
    both = {"ServiceMonitor", "PrometheusRule"}
    on = monitoring.desired(META, _spec_for(), both)
    assert {kind: m is not None for kind, m in on.items()} == {
        "ServiceMonitor": True,
        "PrometheusRule": True,
        "ConfigMap": True,
    }
    off = monitoring.desired(META, _spec_for(enabled=False), both)
    assert set(off) == set(on) and all(m is None for m in off.values())
    assert monitoring.desired(META, _spec_for(), set()) == {}
    no_board = monitoring.desired(META, _spec_for(dashboard={"enabled": False}), both)
    assert no_board["ConfigMap"] is None and no_board["ServiceMonitor"] is not None


def test_backup_age_and_migration_duration_are_exported_only_when_known() -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    collector = InstanceCollector()
    registry = CollectorRegistry()
    registry.register(collector)
    collector.observe("ns", "a", {"phase": "Ready", "readyReplicas": 2})
    text = generate_latest(registry).decode()
    assert 'somamemory_operator_instance_phase{name="a",namespace="ns",phase="Ready"} 1.0' in text
    assert "somamemory_operator_instance_last_backup_age_seconds{" not in text
    assert "somamemory_operator_instance_migration_duration_seconds{" not in text
    collector.observe(
        "ns",
        "a",
        {"phase": "Ready", "migrationSeconds": 7, "lastBackupTime": "2020-01-01T00:00:00Z"},
    )
    text = generate_latest(registry).decode()
    assert (
        'somamemory_operator_instance_migration_duration_seconds{name="a",namespace="ns"} 7.0'
        in (text)
    )
    (age,) = re.findall(r'last_backup_age_seconds\{name="a",namespace="ns"\} (\S+)', text)
    assert float(age) > 365 * 86400
    collector.forget("ns", "a")
    assert 'name="a"' not in generate_latest(registry).decode()


# ---- the real operator against kmock ------------------------------------------------------------


def _serve_monitoring_crds(emulator: kmock.KubernetesEmulator) -> None:
    """What installing the Prometheus Operator's CRDs does to the API: two more resources."""
    for plural, kind in (
        ("servicemonitors", "ServiceMonitor"),
        ("prometheusrules", "PrometheusRule"),
    ):
        emulator.resources[f"{MONITORING}/{plural}"] = kmock.ResourceInfo(
            kind=kind,
            singular=kind.lower(),
            namespaced=True,
            verbs={"get", "list", "watch", "create", "update", "patch", "delete"},
        )


async def _monitoring_objects(cluster: Cluster, ns: str) -> dict[str, dict[str, Any] | None]:
    return {
        "ServiceMonitor": await cluster.get("ServiceMonitor", ns, NAME),
        "PrometheusRule": await cluster.get("PrometheusRule", ns, NAME),
        "ConfigMap": await cluster.get("ConfigMap", ns, monitoring.dashboard_name({"name": NAME})),
    }


async def test_without_the_crds_nothing_is_created_and_the_instance_is_ready(
    operator: Operator,
) -> None:
    ns = _ns()
    await _ready(operator, ns)  # Ready is written after the reconcile asked discovery
    (config_map,) = await operator.call(operator.kube.list, "ConfigMap", ns, {})
    assert config_map["metadata"]["name"] == NAME  # the settings; no dashboard
    assert await operator.call(operator.kube.served, MONITORING) == set()


async def test_crds_installed_later_bring_owned_monitoring_and_disabling_removes_it(
    fresh_cluster: Cluster, tmp_path: pathlib.Path
) -> None:
    cluster = fresh_cluster
    memo = kopf_memo(_write_kubeconfig(cluster.url, tmp_path / "kubeconfig"))
    running = await OperatorThread(memo, standalone=True).start()
    ns = _ns()
    try:
        spec = _spec(monitoring={"labels": {"release": "kube-prometheus-stack"}})
        body = await _create(cluster, ns, spec)
        await _ready(cluster, ns, create=False)
        assert await cluster.get("ConfigMap", ns, f"{NAME}-dashboard") is None

        _serve_monitoring_crds(cluster.emulator)  # the Prometheus Operator arrives

        async def created() -> dict[str, dict[str, Any]] | None:
            found = await _monitoring_objects(cluster, ns)
            return found if all(found.values()) else None  # type: ignore[return-value]

        found = await cluster.eventually(created, "the monitoring objects")
        for kind, obj in found.items():
            (ref,) = obj["metadata"]["ownerReferences"]
            assert (ref["kind"], ref["uid"], ref["controller"]) == (
                "SomaMemory",
                body["metadata"]["uid"],
                True,
            ), kind
        assert found["ServiceMonitor"]["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        assert found["PrometheusRule"]["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        service = await cluster.get("Service", ns, NAME)
        assert service is not None
        selector = found["ServiceMonitor"]["spec"]["selector"]["matchLabels"]
        assert selector.items() <= service["metadata"]["labels"].items()
        (group,) = found["PrometheusRule"]["spec"]["groups"]
        for rule in group["rules"]:
            check_expression(rule["expr"], {"name": NAME, "namespace": ns})
        assert found["ConfigMap"]["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert await _phase_is(cluster, ns, "Ready")

        await cluster.patch("SomaMemory", ns, NAME, {"spec": {"monitoring": {"enabled": False}}})

        async def removed() -> bool:
            return not any((await _monitoring_objects(cluster, ns)).values())

        await cluster.eventually(removed, "the monitoring objects to be removed")
        assert await cluster.get("ConfigMap", ns, NAME) is not None  # the settings stay
    finally:
        await running.stop()


def _gauge(samples: dict[Any, float], name: str, ns: str, **extra: str) -> float | None:
    labels = tuple(sorted({"namespace": ns, "name": NAME, **extra}.items()))
    return samples.get((f"somamemory_operator_instance_{name}", labels))


async def test_metrics_endpoint_serves_a_gauge_set_per_instance(operator: Operator) -> None:
    ns = _ns()
    await _create(operator, ns, _spec())
    job = await _job(operator, ns)
    status = {
        "succeeded": 1,
        "startTime": "2026-01-01T10:00:00Z",
        "completionTime": "2026-01-01T10:00:42Z",
        "conditions": [{"type": "Complete", "status": "True"}],
    }
    name = job["metadata"]["name"]
    await operator.call(operator.kube.patch, "Job", ns, name, {"status": status}, "status")
    await operator.eventually(lambda: operator.get("Deployment", ns, NAME), "the Deployment")
    await _roll_out(operator, ns)
    await operator.eventually(lambda: _phase_is(operator, ns, "Ready"), "phase Ready")

    async def scraped() -> dict[Any, float] | None:
        _, samples = await _scrape(operator)
        return samples if _gauge(samples, "phase", ns, phase="Ready") == 1 else None

    samples = await operator.eventually(scraped, "the Ready phase gauge")
    assert _gauge(samples, "phase", ns, phase="Migrating") == 0
    assert _gauge(samples, "ready_replicas", ns) == 2
    assert _gauge(samples, "desired_replicas", ns) == 2
    assert _gauge(samples, "migration_duration_seconds", ns) == 42
    assert _gauge(samples, "last_backup_age_seconds", ns) is None  # no backup taken: unknown
    smem = await operator.get("SomaMemory", ns, NAME)
    assert smem is not None and smem["status"]["migrationSeconds"] == 42

    await operator.call(operator.kube.delete, "SomaMemory", ns, NAME)

    async def forgotten() -> bool:
        _, samples = await _scrape(operator)
        return _gauge(samples, "ready_replicas", ns) is None

    await operator.eventually(forgotten, "the deleted instance's gauges to go")
