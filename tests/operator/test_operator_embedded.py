"""Without a Milvus server: one server pod, milvus-lite on a claim that outlives the pod (and the
SomaMemory), never two pods each with a private throwaway index."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from somamemory_operator import manifests
from somamemory_operator.spec import SpecError, normalize
from tests.operator.test_operator_lifecycle import NAME, _conditions, _create, _ns, _phase_is
from tests.operator.test_operator_settings import _ready_with
from tests.support.k8s import validate_manifests

if TYPE_CHECKING:
    from tests.operator.conftest import Cluster

META = {"name": NAME, "namespace": "default", "uid": "0b7c3a56-0000-4000-8000-000000000004"}


def _embedded(**overrides: Any) -> dict[str, Any]:
    spec = {
        "image": "ghcr.io/somamemory/somamemory:1.0.0",
        "replicas": 1,
        "apiTokenSecretRef": {"name": "soma-token"},
        "postgres": {"urlSecretRef": {"name": "soma-postgres"}},
    }
    return spec | overrides


def test_one_pod_keeps_milvus_lite_on_a_claim_and_is_replaced_not_surged() -> None:
    spec = normalize(_embedded(storage={"size": "20Gi", "storageClassName": "fast"}))
    claim = manifests.data_claim(META, spec)
    assert claim is not None
    assert claim["spec"]["resources"]["requests"]["storage"] == "20Gi"
    assert claim["spec"]["storageClassName"] == "fast"
    assert "ownerReferences" not in claim["metadata"]  # deleting the SomaMemory keeps the data
    dep = manifests.deployment(META, spec, "hash")
    assert dep["spec"]["replicas"] == 1
    assert dep["spec"]["strategy"] == {"type": "Recreate"}  # two pods cannot open milvus-lite
    volumes = {v["name"]: v for v in dep["spec"]["template"]["spec"]["volumes"]}
    assert volumes["data"]["persistentVolumeClaim"] == {"claimName": f"{NAME}-data"}
    validate_manifests([claim, dep])
    served = normalize(_embedded(milvus={"host": "milvus"}, replicas=3))
    assert manifests.data_claim(META, served) is None


@pytest.mark.parametrize(
    "overrides",
    [{"replicas": 2}, {"autoscaling": {"enabled": True, "minReplicas": 1, "maxReplicas": 3}}],
)
def test_more_than_one_pod_without_a_milvus_server_is_refused(overrides: dict[str, Any]) -> None:
    with pytest.raises(SpecError, match=r"without spec\.milvus the server keeps milvus-lite"):
        normalize(_embedded(**overrides))


async def test_the_claim_is_created_once_and_the_pod_mounts_it(operator: Cluster) -> None:
    ns = _ns()
    await _ready_with(operator, ns, _embedded())
    claim = await operator.get("PersistentVolumeClaim", ns, f"{NAME}-data")
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    dep = await operator.get("Deployment", ns, NAME)
    assert dep["spec"]["strategy"]["type"] == "Recreate"
    assert "rollingUpdate" not in dep["spec"]["strategy"]


async def test_two_replicas_without_milvus_are_refused_in_status(operator: Cluster) -> None:
    ns = _ns()
    await _create(operator, ns, _embedded(replicas=2))
    status = await operator.eventually(lambda: _phase_is(operator, ns, "Failed"), "Failed")
    stalled = _conditions(status)["Stalled"]
    assert (stalled["status"], stalled["reason"]) == ("True", "InvalidSpec")
    assert "name a Milvus server in spec.milvus" in stalled["message"]
    assert await operator.call(operator.kube.list, "Deployment", ns, {}) == []
