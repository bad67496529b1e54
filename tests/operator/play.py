"""Playing the cluster's part in the operator tests: the kubelet's pods and the controllers'
status, which kmock (an API emulator, no controllers) never writes itself."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.operator.conftest import Cluster


def waiting(reason: str, message: str = "", name: str = "somamemory") -> dict[str, Any]:
    """A container status stuck in ``waiting`` for ``reason``, as the kubelet writes it."""
    return {
        "name": name,
        "ready": False,
        "restartCount": 0,
        "image": "ghcr.io/somamemory/somamemory:1.0.0",
        "state": {"waiting": {"reason": reason, "message": message}},
    }


def terminated(exit_code: int, message: str, name: str = "somamemory") -> dict[str, Any]:
    """A container that ran and exited, with its termination message."""
    reason = "Completed" if exit_code == 0 else "Error"
    return {
        "name": name,
        "state": {"terminated": {"exitCode": exit_code, "reason": reason, "message": message}},
    }


async def put_pod(
    cluster: Cluster,
    namespace: str,
    name: str,
    labels: dict[str, str],
    containers: list[dict[str, Any]],
    conditions: list[dict[str, Any]] | None = None,
    phase: str = "Pending",
) -> None:
    """Create (or replace the status of) a pod with these container statuses."""
    status = {"phase": phase, "containerStatuses": containers, "conditions": conditions or []}
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"containers": [{"name": "somamemory", "image": "x"}]},
        "status": status,
    }
    if await cluster.get("Pod", namespace, name) is None:
        await cluster.call(cluster.kube.create, pod)
    else:
        await cluster.call(cluster.kube.patch, "Pod", namespace, name, {"status": status}, "status")


async def job_pod(
    cluster: Cluster, namespace: str, job: dict[str, Any], containers: list[dict[str, Any]]
) -> None:
    """The pod a Job's controller made, with the labels it gives them."""
    name = job["metadata"]["name"]
    labels = {
        **job["spec"]["template"]["metadata"]["labels"],
        "job-name": name,
        "batch.kubernetes.io/job-name": name,
    }
    await put_pod(cluster, namespace, f"{name}-x7k2p", labels, containers)


async def server_pod(
    cluster: Cluster,
    namespace: str,
    deployment: dict[str, Any],
    suffix: str,
    containers: list[dict[str, Any]],
    conditions: list[dict[str, Any]] | None = None,
) -> None:
    """A pod of the Deployment's current template."""
    labels = {**deployment["spec"]["template"]["metadata"]["labels"], "pod-template-hash": "abc"}
    name = f"{deployment['metadata']['name']}-abc-{suffix}"
    await put_pod(cluster, namespace, name, labels, containers, conditions)
