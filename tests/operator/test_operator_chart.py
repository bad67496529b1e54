"""The operator chart: it upgrades its CRD (a kept template, since Helm never upgrades crds/),
and its replicas coordinate through kopf's peering."""

from __future__ import annotations

import subprocess
from typing import Any

import yaml

from somamemory_operator.crd import crd
from somamemory_operator.task_crd import task_crds
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


def test_the_crds_are_templates_helm_upgrades_and_keeps_on_uninstall() -> None:
    rendered = {  # without --include-crds
        d["metadata"]["name"]: d for d in _render() if d["kind"] == "CustomResourceDefinition"
    }
    expected = {c["metadata"]["name"]: c for c in [crd(), *task_crds()]}
    assert set(rendered) == set(expected)  # the SomaMemory's and the four backup kinds'
    for name, doc in rendered.items():
        meta = doc["metadata"]
        assert meta["annotations"]["helm.sh/resource-policy"] == "keep"
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "Helm"
        assert doc["spec"] == expected[name]["spec"]  # this version's schema, rules and columns
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


def test_the_operator_may_run_backups_restores_and_reindexes() -> None:
    kinds = ["somamemorybackups", "somamemoryscheduledbackups", "somamemoryrestores"]
    kinds.append("somamemoryreindexes")
    for docs, role in ((_render(), "ClusterRole"), (_render("watch.namespaces={a}"), "Role")):
        rules = _one(docs, role)["rules"]

        def verbs(group: str, resource: str, rules: list[dict[str, Any]] = rules) -> set[str]:
            return {
                verb
                for rule in rules
                if group in rule["apiGroups"] and resource in rule["resources"]
                for verb in rule["verbs"]
            }

        for kind in kinds:
            # schedules and backupFirst make backups, retention deletes them
            assert {"watch", "create", "patch", "delete"} <= verbs("soma.dev", kind)
            assert "patch" in verbs("soma.dev", f"{kind}/status")
            assert "update" in verbs("soma.dev", f"{kind}/finalizers")  # kopf's, for daemons
        assert {"create", "delete", "watch"} <= verbs("batch", "jobs")
        assert {"get", "create"} <= verbs("", "persistentvolumeclaims")  # a backup's claim
        assert "cronjobs" not in str(rules)  # schedules are the operator's, not CronJobs


def test_the_backup_crds_are_valid_and_their_checked_in_copies_current() -> None:
    from somamemory_operator import codegen
    from somamemory_operator.crd import task_crds_yaml

    validate_manifests(task_crds())
    text = task_crds_yaml()
    assert codegen.TASK_CRD_FILE.read_text() == text, "python -m somamemory_operator.crd --write"
    assert codegen.CHART_TASK_CRD_TEMPLATE.read_text() == codegen.chart_task_crd_template(text)
    names = {c["spec"]["names"]["kind"]: c["spec"]["names"]["shortNames"] for c in task_crds()}
    assert names == {
        "SomaMemoryBackup": ["smembackup"],
        "SomaMemoryScheduledBackup": ["smemschedule"],
        "SomaMemoryRestore": ["smemrestore"],
        "SomaMemoryReindex": ["smemreindex"],
    }
