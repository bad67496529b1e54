"""The operator's story against an emulated cluster: migrate first, deploy, report, repair."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from conftest import Cluster

pytestmark = pytest.mark.asyncio(loop_scope="session")

IMAGE_V1 = "ghcr.io/somamemory/somamemory:1.0.0"
IMAGE_V2 = "ghcr.io/somamemory/somamemory:1.1.0"
NAME = "memory"


def _spec(**overrides: Any) -> dict[str, Any]:
    spec = {
        "image": IMAGE_V1,
        "replicas": 2,
        "apiTokenSecretRef": {"name": "soma-token"},
        "postgres": {"urlSecretRef": {"name": "soma-postgres"}},
        "redis": {"host": "redis", "passwordSecretRef": {"name": "soma-redis"}},
        "milvus": {"host": "milvus"},
        "batching": {"enabled": True, "size": 64, "flushMs": 10},
    }
    return spec | overrides


async def _create(cluster: Cluster, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    body = {
        "apiVersion": "soma.dev/v1alpha1",
        "kind": "SomaMemory",
        "metadata": {
            "name": NAME,
            "namespace": namespace,
            "uid": str(uuid.uuid4()),
            "generation": 1,
            "resourceVersion": "1",
        },
        "spec": spec,
    }
    await cluster.call(cluster.kube.create, body)
    return body


def _ns() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


async def _status(cluster: Cluster, ns: str) -> dict[str, Any]:
    obj = await cluster.get("SomaMemory", ns, NAME)
    return (obj or {}).get("status") or {}


async def _phase_is(cluster: Cluster, ns: str, phase: str) -> dict[str, Any] | None:
    status = await _status(cluster, ns)
    return status if status.get("phase") == phase else None


async def _job(cluster: Cluster, ns: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        jobs = await cluster.call(cluster.kube.list, "Job", ns, {})
        return jobs[0] if len(jobs) == 1 else None

    return await cluster.eventually(probe, "the migration Job")


async def _finish_job(cluster: Cluster, ns: str, name: str, ok: bool = True) -> None:
    if ok:
        cond = {"type": "Complete", "status": "True"}
        status = {"succeeded": 1, "conditions": [cond]}
    else:
        cond = {
            "type": "Failed",
            "status": "True",
            "reason": "BackoffLimitExceeded",
            "message": "Job has reached the specified backoff limit",
        }
        status = {"failed": 3, "conditions": [cond]}
    await cluster.call(cluster.kube.patch, "Job", ns, name, {"status": status}, "status")


async def _roll_out(cluster: Cluster, ns: str, replicas: int = 2) -> None:
    status = {
        "replicas": replicas,
        "readyReplicas": replicas,
        "updatedReplicas": replicas,
        "availableReplicas": replicas,
        "conditions": [{"type": "Available", "status": "True"}],
    }
    await cluster.call(cluster.kube.patch, "Deployment", ns, NAME, {"status": status}, "status")


async def _ready(cluster: Cluster, ns: str, create: bool = True) -> dict[str, Any]:
    """Create a SomaMemory (unless it exists) and play the cluster until it is Ready."""
    if create:
        await _create(cluster, ns, _spec())
    job = await _job(cluster, ns)
    await _finish_job(cluster, ns, job["metadata"]["name"])
    await cluster.eventually(lambda: cluster.get("Deployment", ns, NAME), "the Deployment")
    await _roll_out(cluster, ns)
    return await cluster.eventually(lambda: _phase_is(cluster, ns, "Ready"), "phase Ready")


def _conditions(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in status["conditions"]}


async def test_creation_runs_the_migration_job_before_any_deployment(operator: Cluster) -> None:
    ns = _ns()
    body = await _create(operator, ns, _spec())
    job = await _job(operator, ns)
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == IMAGE_V1
    assert container["args"] == ["migrate"]
    assert job["spec"]["backoffLimit"] == 2 and job["spec"]["ttlSecondsAfterFinished"] > 0
    assert job["metadata"]["ownerReferences"][0]["uid"] == body["metadata"]["uid"]
    status = await operator.eventually(lambda: _phase_is(operator, ns, "Migrating"), "Migrating")
    assert _conditions(status)["MigrationsApplied"]["reason"] == "Migrating"
    assert await operator.get("ConfigMap", ns, NAME) is not None
    assert await operator.get("Deployment", ns, NAME) is None
    assert await operator.get("Service", ns, NAME) is None


async def test_succeeded_job_deploys_and_ready_pods_make_it_ready(operator: Cluster) -> None:
    ns = _ns()
    body = await _create(operator, ns, _spec())
    job = await _job(operator, ns)
    await _finish_job(operator, ns, job["metadata"]["name"])
    deployment = await operator.eventually(
        lambda: operator.get("Deployment", ns, NAME), "the Deployment"
    )
    service = await operator.eventually(lambda: operator.get("Service", ns, NAME), "Service")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == IMAGE_V1 and container["args"] == ["serve"]
    assert container["ports"] == [{"name": "http", "containerPort": 10101, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    env = {item["name"]: item for item in container["env"]}
    assert env["POSTGRES_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "soma-postgres",
        "key": "url",
    }
    assert service["spec"]["ports"][0]["port"] == 10101
    for child in (deployment, service):
        (ref,) = child["metadata"]["ownerReferences"]
        assert ref["uid"] == body["metadata"]["uid"] and ref["controller"] is True
    status = await operator.eventually(lambda: _phase_is(operator, ns, "Deploying"), "Deploying")
    assert status["migratedImage"] == IMAGE_V1 and status["schemaRevision"]

    await _roll_out(operator, ns)
    status = await operator.eventually(lambda: _phase_is(operator, ns, "Ready"), "Ready")
    conds = _conditions(status)
    assert {t: c["status"] for t, c in conds.items()} == {
        "Ready": "True",
        "Reconciling": "False",  # kstatus: current, nothing in flight, nothing stuck
        "Stalled": "False",
        "MigrationsApplied": "True",
        "Available": "True",
        "Degraded": "False",
    }
    assert all(c["observedGeneration"] == 1 and c["lastTransitionTime"] for c in conds.values())
    assert status["observedGeneration"] == 1
    assert status["readyReplicas"] == 2 and status["ready"] == "2/2"
    events = await operator.call(operator.kube.list, "Event", ns, {})
    reasons = {e["reason"] for e in events}
    assert {"MigrationStarted", "MigrationSucceeded", "DeploymentCreated", "Ready"} <= reasons


async def test_image_change_migrates_first_then_rolls_out(operator: Cluster) -> None:
    ns = _ns()
    await _ready(operator, ns)
    await operator.patch(
        "SomaMemory", ns, NAME, {"metadata": {"generation": 2}, "spec": {"image": IMAGE_V2}}
    )

    async def new_job() -> dict[str, Any] | None:
        jobs = await operator.call(operator.kube.list, "Job", ns, {})
        fresh = [
            j for j in jobs if j["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE_V2
        ]
        return fresh[0] if fresh else None

    job = await operator.eventually(new_job, "a migration Job for the new image")
    await operator.eventually(lambda: _phase_is(operator, ns, "Migrating"), "Migrating")
    deployment = await operator.get("Deployment", ns, NAME)
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE_V1

    await _finish_job(operator, ns, job["metadata"]["name"])

    async def rolled() -> bool:
        dep = await operator.get("Deployment", ns, NAME)
        return dep["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE_V2

    await operator.eventually(rolled, "the Deployment on the new image")
    status = await operator.eventually(lambda: _phase_is(operator, ns, "Ready"), "Ready again")
    assert status["migratedImage"] == IMAGE_V2 and status["observedGeneration"] == 2


async def test_failed_migration_keeps_the_running_deployment(operator: Cluster) -> None:
    ns = _ns()
    await _ready(operator, ns)
    await operator.patch("SomaMemory", ns, NAME, {"spec": {"image": IMAGE_V2}})

    async def new_job() -> dict[str, Any] | None:
        jobs = await operator.call(operator.kube.list, "Job", ns, {})
        fresh = [j for j in jobs if j["metadata"]["annotations"]["soma.dev/image"] == IMAGE_V2]
        return fresh[0] if fresh else None

    job = await operator.eventually(new_job, "the second migration Job")
    await _finish_job(operator, ns, job["metadata"]["name"], ok=False)
    status = await operator.eventually(lambda: _phase_is(operator, ns, "Degraded"), "Degraded")
    conds = _conditions(status)
    assert conds["Degraded"]["status"] == "True"
    assert conds["Degraded"]["reason"] == "MigrationFailed"
    assert "BackoffLimitExceeded" in conds["MigrationsApplied"]["message"]
    assert conds["Available"]["status"] == "True"
    assert status["migratedImage"] == IMAGE_V1
    deployment = await operator.get("Deployment", ns, NAME)
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE_V1


async def test_failed_first_migration_deploys_nothing(operator: Cluster) -> None:
    ns = _ns()
    await _create(operator, ns, _spec())
    job = await _job(operator, ns)
    await _finish_job(operator, ns, job["metadata"]["name"], ok=False)
    status = await operator.eventually(lambda: _phase_is(operator, ns, "Failed"), "Failed")
    assert _conditions(status)["Ready"]["reason"] == "MigrationFailed"
    assert "nothing was deployed" in status["message"]
    assert await operator.get("Deployment", ns, NAME) is None


async def test_deleted_or_edited_children_are_restored(operator: Cluster) -> None:
    ns = _ns()
    await _ready(operator, ns)
    await operator.call(operator.kube.delete, "Service", ns, NAME)
    await operator.eventually(lambda: operator.get("Service", ns, NAME), "the Service back")
    await operator.patch("Deployment", ns, NAME, {"spec": {"replicas": 7}})

    async def replicas_restored() -> bool:
        dep = await operator.get("Deployment", ns, NAME)
        return dep["spec"]["replicas"] == 2

    await operator.eventually(replicas_restored, "replicas back at 2")
    await operator.patch("ConfigMap", ns, NAME, {"data": {"SOMA_BATCH_SIZE": "1"}})

    async def config_restored() -> bool:
        cm = await operator.get("ConfigMap", ns, NAME)
        return cm["data"]["SOMA_BATCH_SIZE"] == "64"

    await operator.eventually(config_restored, "the ConfigMap back")


async def test_spec_change_is_applied(operator: Cluster) -> None:
    ns = _ns()
    await _ready(operator, ns)
    await operator.patch(
        "SomaMemory",
        ns,
        NAME,
        {"spec": {"replicas": 3, "podDisruptionBudget": {"enabled": True, "minAvailable": 2}}},
    )

    async def applied() -> bool:
        dep = await operator.get("Deployment", ns, NAME)
        return dep["spec"]["replicas"] == 3

    await operator.eventually(applied, "three replicas")
    pdb = await operator.eventually(
        lambda: operator.get("PodDisruptionBudget", ns, NAME), "a PodDisruptionBudget"
    )
    assert pdb["spec"]["minAvailable"] == 2
    assert len(await operator.call(operator.kube.list, "Job", ns, {})) == 1  # no new migration


async def test_invalid_spec_is_refused_with_the_reason(operator: Cluster) -> None:
    ns = _ns()
    await _create(
        operator,
        ns,
        _spec(env=[{"name": "SOMA_PORT", "value": "1"}, {"name": "SOMA_NOPE", "value": "x"}]),
    )
    status = await operator.eventually(lambda: _phase_is(operator, ns, "Failed"), "Failed")
    degraded = _conditions(status)["Degraded"]
    assert degraded["reason"] == "InvalidSpec"
    assert "spec.env[0].name: SOMA_PORT is set by the operator" in degraded["message"]
    assert "spec.env[1].name: SOMA_NOPE is not a setting the service reads" in degraded["message"]
    for kind in ("ConfigMap", "Job", "Deployment", "Service"):
        assert await operator.call(operator.kube.list, kind, ns, {}) == []


async def test_deleting_the_somamemory_releases_it_and_children_are_owned(
    operator: Cluster,
) -> None:
    # kmock runs no garbage collector: the cascade is Kubernetes' job, driven by the owner
    # references asserted here. The operator deletes nothing itself.
    ns = _ns()
    await _ready(operator, ns)
    smem = await operator.get("SomaMemory", ns, NAME)
    assert "soma.dev/finalizer" in smem["metadata"]["finalizers"]  # kopf's, for the daemon
    uid = smem["metadata"]["uid"]
    for kind in ("ConfigMap", "Job", "Deployment", "Service"):
        (child,) = await operator.call(operator.kube.list, kind, ns, {})
        (ref,) = child["metadata"]["ownerReferences"]
        assert (ref["kind"], ref["uid"], ref["controller"]) == ("SomaMemory", uid, True)
    await operator.call(operator.kube.delete, "SomaMemory", ns, NAME)

    async def gone() -> bool:
        return await operator.get("SomaMemory", ns, NAME) is None

    await operator.eventually(gone, "the SomaMemory to be released and deleted")


async def test_the_migration_pods_termination_message_is_the_schema_revision(
    operator: Cluster,
) -> None:
    ns = _ns()
    await _create(operator, ns, _spec())
    job = await _job(operator, ns)
    job_name = job["metadata"]["name"]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert container.get("terminationMessagePath", "/dev/termination-log") == "/dev/termination-log"
    # The cluster's part: the Job's Pod ran `somamemory migrate`, which wrote "0001\n" to
    # /dev/termination-log; the kubelet put it in the terminated state. (kmock ignores the
    # label selector, so this namespace holds only this Pod.)
    terminated = {"exitCode": 0, "reason": "Completed", "message": "0001\n"}
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{job_name}-x7k2p",
            "namespace": ns,
            "labels": {"job-name": job_name, "batch.kubernetes.io/job-name": job_name},
        },
        "spec": {"restartPolicy": "Never", "containers": [container]},
        "status": {
            "phase": "Succeeded",
            "containerStatuses": [{"name": container["name"], "state": {"terminated": terminated}}],
        },
    }
    await operator.call(operator.kube.create, pod)
    await _finish_job(operator, ns, job_name)

    async def revision() -> dict[str, Any] | None:
        status = await _status(operator, ns)
        return status if status.get("schemaRevision") == "0001" else None

    status = await operator.eventually(revision, "schemaRevision 0001")
    assert _conditions(status)["MigrationsApplied"]["message"] == f"schema 0001 for {IMAGE_V1}"
    events = await operator.call(operator.kube.list, "Event", ns, {})
    assert f"Job {job_name} applied schema 0001" in {
        e["message"] for e in events if e["reason"] == "MigrationSucceeded"
    }
    await _roll_out(operator, ns)
    status = await operator.eventually(lambda: _phase_is(operator, ns, "Ready"), "Ready")
    assert status["schemaRevision"] == "0001"  # kept once the Job's facts are no longer read
