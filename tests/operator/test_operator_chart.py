"""The operator chart: it upgrades its CRD (a kept template, since Helm never upgrades crds/),
and its replicas coordinate through kopf's peering."""

from __future__ import annotations

import subprocess
from typing import Any

import yaml

from somamemory_operator.crd import crd
from tests.operator.test_operator_manifests import CHART
from tests.support.k8s import helm_binary, validate_manifests


def _render(*sets: str) -> list[dict[str, Any]]:
    args = [a for s in sets for a in ("--set", s)]
    done = subprocess.run(
        [str(helm_binary()), "template", "soma", str(CHART), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def _refused(*sets: str) -> str:
    args = [a for s in sets for a in ("--set", s)]
    done = subprocess.run(
        [str(helm_binary()), "template", "soma", str(CHART), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0, "helm accepted the values"
    return done.stderr


def _one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (doc,) = [d for d in docs if d["kind"] == kind]
    return doc


def test_the_crd_is_a_template_helm_upgrades_and_keeps_on_uninstall() -> None:
    rendered = _one(_render(), "CustomResourceDefinition")  # without --include-crds
    meta = rendered["metadata"]
    assert meta["annotations"]["helm.sh/resource-policy"] == "keep"
    assert meta["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    assert rendered["spec"] == crd()["spec"]  # this version's schema, rules and columns
    assert "CustomResourceDefinition" not in {d["kind"] for d in _render("crd.install=false")}


def _container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return _one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]


def test_replicas_meet_in_a_peering_object_and_roll_without_overlap() -> None:
    docs = _render("replicaCount=2")
    dep = _one(docs, "Deployment")
    assert dep["spec"]["replicas"] == 2 and dep["spec"]["strategy"]["type"] == "RollingUpdate"
    container = _container(docs)
    assert "--peering=soma-somamemory-operator" in container["args"]
    assert "--standalone" not in container["args"] + container["command"]
    env = {e["name"]: e for e in container["env"]}
    assert env["POD_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    peering = _one(docs, "ClusterKopfPeering")
    assert peering["metadata"]["name"] == "soma-somamemory-operator"
    rules = _one(docs, "ClusterRole")["rules"]
    assert any("clusterkopfpeerings" in r["resources"] and "patch" in r["verbs"] for r in rules)


def test_namespaced_operators_meet_in_each_namespace() -> None:
    docs = _render("watch.namespaces={memory-a,memory-b}")
    peerings = [d for d in docs if d["kind"] == "KopfPeering"]
    assert sorted(p["metadata"]["namespace"] for p in peerings) == ["memory-a", "memory-b"]
    assert not [d for d in docs if d["kind"] == "ClusterKopfPeering"]


def test_without_peering_there_is_one_standalone_replica() -> None:
    docs = _render("peering.enabled=false")
    dep = _one(docs, "Deployment")
    assert dep["spec"]["replicas"] == 1 and dep["spec"]["strategy"]["type"] == "Recreate"
    assert "--standalone" in _container(docs)["args"]
    assert not [d for d in docs if d["apiVersion"] == "kopf.dev/v1"]
    assert "replicaCount" in _refused("peering.enabled=false", "replicaCount=2")


def test_operator_metrics_have_a_service_and_an_optional_service_monitor() -> None:
    docs = _render(
        "metrics.serviceMonitor.enabled=true", "metrics.serviceMonitor.labels.release=kps"
    )
    service = next(d for d in docs if d["kind"] == "Service")
    validate_manifests([service])
    (port,) = service["spec"]["ports"]
    container = _container(docs)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert port["targetPort"] == "metrics" and port["port"] == ports["metrics"]
    pod_labels = _one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    monitor = _one(docs, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kps"
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"]) == (port["name"], "/metrics")
    assert endpoint["honorLabels"] is True  # the instance gauges' namespace label is kept
    # the operator may manage its instances' ServiceMonitors and PrometheusRules
    rules = _one(docs, "ClusterRole")["rules"]
    (monitoring,) = [r for r in rules if r["apiGroups"] == ["monitoring.coreos.com"]]
    assert {"servicemonitors", "prometheusrules"} <= set(monitoring["resources"])
    assert {"create", "patch", "delete"} <= set(monitoring["verbs"])
    assert "ServiceMonitor" not in {d["kind"] for d in _render()}  # off by default
    off = _render("metrics.enabled=false", "metrics.serviceMonitor.enabled=true")
    kinds = {d["kind"] for d in off}
    assert not {"Service", "ServiceMonitor"} & kinds
