"""Placement: the platform decides where the pods run, what they pull with, what they carry."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from somamemory_operator import manifests
from somamemory_operator.spec import normalize
from tests.operator.test_operator_lifecycle import NAME, _ns, _spec
from tests.operator.test_operator_settings import _ready_with
from tests.support.k8s import validate_manifests

if TYPE_CHECKING:
    from tests.operator.conftest import Cluster

META = {"name": NAME, "namespace": "default", "uid": "0b7c3a56-0000-4000-8000-000000000003"}
SELECTOR = {
    "app.kubernetes.io/name": "somamemory",
    "app.kubernetes.io/instance": NAME,
    "app.kubernetes.io/component": "server",
}
PLACEMENT: dict[str, Any] = {
    "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "2Gi"}},
    "nodeSelector": {"pool": "memory"},
    "tolerations": [
        {"key": "dedicated", "operator": "Equal", "value": "ai", "effect": "NoSchedule"}
    ],
    "affinity": {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "arch", "operator": "In", "values": ["amd64"]}]}
                ]
            }
        }
    },
    "topologySpreadConstraints": [
        {
            "maxSkew": 1,
            "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "DoNotSchedule",
        }
    ],
    "priorityClassName": "memory-critical",
    "imagePullSecrets": [{"name": "registry"}],
    "podAnnotations": {"sidecar.istio.io/inject": "false"},
    "podLabels": {"team": "agents"},
}
NODE_PLACEMENT = (
    "nodeSelector",
    "tolerations",
    "affinity",
    "priorityClassName",
    "imagePullSecrets",
)


def _pods(spec: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(server pod template, migration pod template) rendered for ``spec``."""
    spec = normalize(spec)
    server = manifests.deployment(META, spec, "hash")["spec"]["template"]
    migration = manifests.migration_job(META, spec)["spec"]["template"]
    return server, migration


def test_placement_reaches_the_server_pods_and_the_migration_pod() -> None:
    server, migration = _pods(_spec(**PLACEMENT))
    for template in (server, migration):
        pod = template["spec"]
        for field in NODE_PLACEMENT:
            assert pod[field] == PLACEMENT[field], field
        assert pod["containers"][0]["resources"] == PLACEMENT["resources"]
        assert template["metadata"]["annotations"]["sidecar.istio.io/inject"] == "false"
        assert template["metadata"]["labels"]["team"] == "agents"
    (spread,) = server["spec"]["topologySpreadConstraints"]
    assert spread["topologyKey"] == "topology.kubernetes.io/zone"
    assert spread["labelSelector"] == {"matchLabels": SELECTOR}  # filled in: this instance's pods
    assert "topologySpreadConstraints" not in migration["spec"]  # one pod: nothing to spread
    spec = normalize(_spec(**PLACEMENT))
    validate_manifests(
        [
            manifests.deployment(META, spec, "hash"),
            manifests.migration_job(META, spec),
            manifests.schema_check_job(META, spec),
        ]
    )


def test_by_default_replicas_spread_across_nodes_without_blocking_scheduling() -> None:
    server, _ = _pods(_spec())
    assert server["spec"]["topologySpreadConstraints"] == [
        {
            "labelSelector": {"matchLabels": SELECTOR},
            "maxSkew": 1,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "ScheduleAnyway",
        }
    ]
    none, _ = _pods(_spec(topologySpreadConstraints=[]))
    assert none["spec"]["topologySpreadConstraints"] == []


def test_the_operators_labels_and_annotations_win_on_the_pods() -> None:
    server, _ = _pods(
        _spec(podAnnotations={"soma.dev/config-hash": "mine"}, podLabels={"team": "agents"})
    )
    assert server["metadata"]["annotations"]["soma.dev/config-hash"] == "hash"
    assert server["metadata"]["labels"] == {
        **SELECTOR,
        "app.kubernetes.io/managed-by": "somamemory-operator",
        "team": "agents",
    }


async def test_placement_is_applied_and_removing_it_removes_it_from_the_pods(
    operator: Cluster,
) -> None:
    ns = _ns()
    job = await _ready_with(operator, ns, _spec(**PLACEMENT))
    assert job["spec"]["template"]["spec"]["imagePullSecrets"] == [{"name": "registry"}]
    dep = await operator.get("Deployment", ns, NAME)
    assert dep["spec"]["template"]["spec"]["nodeSelector"] == {"pool": "memory"}
    # kubectl rollout restart's annotation is someone else's: a reconcile must keep it
    restarted = {"kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"}
    await operator.patch(
        "Deployment", ns, NAME, {"spec": {"template": {"metadata": {"annotations": restarted}}}}
    )
    removed = {key: None for key in ("nodeSelector", "tolerations", "podAnnotations")}
    await operator.patch("SomaMemory", ns, NAME, {"spec": removed})

    async def gone() -> dict[str, Any] | None:
        dep = await operator.get("Deployment", ns, NAME)
        pod = dep["spec"]["template"]["spec"]
        return dep if "nodeSelector" not in pod and "tolerations" not in pod else None

    dep = await operator.eventually(gone, "nodeSelector and tolerations gone from the pods")
    annotations = dep["spec"]["template"]["metadata"]["annotations"]
    assert "sidecar.istio.io/inject" not in annotations
    assert annotations["kubectl.kubernetes.io/restartedAt"] == "2026-01-01T00:00:00Z"
    assert dep["spec"]["template"]["spec"]["affinity"] == PLACEMENT["affinity"]  # still asked
