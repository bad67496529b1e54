"""With no values at all the chart runs the embedded default: one pod, its data on a volume.

Whatever is not given as a server (PostgreSQL, Milvus) runs inside that pod under the data
directory, so the pod is a StatefulSet of one with a PersistentVolumeClaim; with both servers the
API is a stateless Deployment instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.chart.helm import Manifest, api_workload, find, one, pod_spec

DATA_DIR = "/var/lib/somamemory"
PG_URL = "externalPostgresql.url=postgresql://u:p@db:5432/soma"
MILVUS_URI = "externalMilvus.uri=http://milvus:19530"


def _container(workload: Manifest) -> dict[str, Any]:
    (container,) = pod_spec(workload)["containers"]
    return container


def _env(docs: list[Manifest]) -> set[str]:
    container = _container(api_workload(docs))
    names = {item["name"] for item in container["env"]}
    return names | set(one(docs, "ConfigMap", "soma-somamemory")["data"])


def test_defaults_are_one_stateful_pod_with_its_data_on_a_claim(
    render: Callable[..., list[Manifest]],
) -> None:
    docs = render("defaults")
    workload = api_workload(docs)
    assert workload["kind"] == "StatefulSet"
    assert not find(docs, "Deployment") and not find(docs, "HorizontalPodAutoscaler")
    assert workload["spec"]["replicas"] == 1
    assert (
        workload["spec"]["serviceName"]
        == one(docs, "Service", "soma-somamemory")["metadata"]["name"]
    )
    (claim,) = workload["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "10Gi"
    mounts = {m["mountPath"]: m["name"] for m in _container(workload)["volumeMounts"]}
    assert mounts == {"/tmp": "tmp", DATA_DIR: claim["metadata"]["name"]}
    data = one(docs, "ConfigMap", "soma-somamemory")["data"]
    assert data["SOMA_DATA_DIR"] == DATA_DIR


def test_defaults_keep_the_pod_locked_down(render: Callable[..., list[Manifest]]) -> None:
    workload = api_workload(render("defaults"))
    spec = pod_spec(workload)
    assert spec["securityContext"]["runAsUser"] == 10001
    assert spec["securityContext"]["fsGroup"] == 10001
    # Never re-chmod the volume on later mounts: PostgreSQL refuses a group-writable data dir.
    assert spec["securityContext"]["fsGroupChangePolicy"] == "OnRootMismatch"
    assert _container(workload)["securityContext"]["readOnlyRootFilesystem"] is True
    (tmp,) = [v for v in spec["volumes"] if v["name"] == "tmp"]
    assert "emptyDir" in tmp


def test_defaults_use_no_server_no_migration_hook_and_no_hash(
    render: Callable[..., list[Manifest]],
) -> None:
    docs = render("defaults")
    assert not find(docs, "Job")
    names = _env(docs)
    # Unset variables are what make `somamemory serve` start its embedded PostgreSQL and
    # milvus-lite, use its in-process cache, and embed with the local model.
    assert not names & {
        "POSTGRES_URL",
        "SOMA_MILVUS_URI",
        "REDIS_HOST",
        "SOMA_FORCE_HASH_EMBEDDINGS",
    }
    assert "SOMA_API_TOKEN" in names
    assert "postgres-url" not in one(docs, "Secret", "soma-somamemory")["data"]


def test_the_claim_template_does_not_change_on_upgrade(
    render: Callable[..., list[Manifest]],
) -> None:
    """volumeClaimTemplates are immutable: version labels there would fail every upgrade."""
    before = api_workload(render("defaults"))["spec"]["volumeClaimTemplates"]
    after = api_workload(render("defaults", "image.tag=9.9.9", "commonLabels.team=x"))
    assert after["spec"]["volumeClaimTemplates"] == before


def test_persistence_can_be_sized_placed_or_turned_off(
    render: Callable[..., list[Manifest]],
) -> None:
    sized = api_workload(
        render("defaults", "persistence.size=50Gi", "persistence.storageClass=fast")
    )
    (claim,) = sized["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["storageClassName"] == "fast"
    assert claim["spec"]["resources"]["requests"]["storage"] == "50Gi"
    ephemeral = api_workload(render("defaults", "persistence.enabled=false"))
    assert "volumeClaimTemplates" not in ephemeral["spec"]
    (data,) = [v for v in pod_spec(ephemeral)["volumes"] if v["name"] == "data"]
    assert data == {"name": "data", "emptyDir": {}}


def test_an_external_postgresql_alone_keeps_milvus_lite_in_the_pod(
    render: Callable[..., list[Manifest]],
) -> None:
    docs = render("defaults", PG_URL)
    assert api_workload(docs)["kind"] == "StatefulSet"
    assert one(docs, "Job")["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    names = _env(docs)
    assert "POSTGRES_URL" in names and "SOMA_MILVUS_URI" not in names


def test_an_external_milvus_alone_keeps_postgresql_in_the_pod(
    render: Callable[..., list[Manifest]],
) -> None:
    docs = render("defaults", MILVUS_URI)
    assert api_workload(docs)["kind"] == "StatefulSet"
    assert not find(docs, "Job")
    names = _env(docs)
    assert "SOMA_MILVUS_URI" in names and "POSTGRES_URL" not in names


def test_with_both_servers_the_api_is_a_stateless_deployment(
    render: Callable[..., list[Manifest]],
) -> None:
    docs = render("defaults", PG_URL, MILVUS_URI, "replicaCount=3")
    workload = api_workload(docs)
    assert workload["kind"] == "Deployment"
    assert workload["spec"]["replicas"] == 3
    assert workload["spec"]["strategy"]["type"] == "RollingUpdate"
    assert not find(docs, "StatefulSet") and not find(docs, "PersistentVolumeClaim")
    assert all("emptyDir" in volume for volume in pod_spec(workload)["volumes"])
