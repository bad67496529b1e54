"""Status a GitOps tool can trust: kstatus conditions, failures read from the pods, a Ready that
holds while an HPA adds pods, the scale subresource's fields, and a pause switch."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from tests.operator.play import job_pod, server_pod, waiting
from tests.operator.test_operator_lifecycle import (
    IMAGE_V2,
    NAME,
    _conditions,
    _create,
    _finish_job,
    _job,
    _ns,
    _phase_is,
    _ready,
    _spec,
    _status,
)
from tests.operator.test_operator_settings import _ready_with

if TYPE_CHECKING:
    from tests.operator.conftest import Cluster


async def _stalled(cluster: Cluster, ns: str, reason: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        status = await _status(cluster, ns)
        cond = {c["type"]: c for c in status.get("conditions", [])}.get("Stalled", {})
        return status if (cond.get("status"), cond.get("reason")) == ("True", reason) else None

    return await cluster.eventually(probe, f"Stalled={reason}")


async def test_kstatus_conditions_follow_the_work(operator: Cluster) -> None:
    ns = _ns()
    await _create(operator, ns, _spec())
    status = await operator.eventually(lambda: _phase_is(operator, ns, "Migrating"), "Migrating")
    conds = _conditions(status)
    assert conds["Reconciling"]["status"] == "True" and conds["Reconciling"]["message"]
    assert conds["Stalled"]["status"] == "False" and conds["Ready"]["status"] == "False"
    await _ready(operator, ns, create=False)
    status = await _status(operator, ns)
    conds = _conditions(status)
    assert (conds["Ready"]["status"], conds["Reconciling"]["status"]) == ("True", "False")
    assert status["selector"] == (
        "app.kubernetes.io/name=somamemory,app.kubernetes.io/instance=memory,"
        "app.kubernetes.io/component=server"
    )
    assert status["replicas"] == 2 and status["image"] == "ghcr.io/somamemory/somamemory:1.0.0"


async def test_an_image_that_cannot_be_pulled_stalls_the_rollout(operator: Cluster) -> None:
    ns = _ns()
    await _ready(operator, ns)
    await operator.patch(
        "SomaMemory", ns, NAME, {"spec": {"env": [{"name": "SOMA_MAX_TOP_K", "value": "50"}]}}
    )
    dep = await operator.get("Deployment", ns, NAME)
    pull = waiting(
        "ImagePullBackOff", 'Back-off pulling image "ghcr.io/somamemory/somamemory:1.0.0"'
    )
    await server_pod(operator, ns, dep, "new", [pull])
    await operator.patch("Deployment", ns, NAME, {"status": {"updatedReplicas": 1, "replicas": 3}})
    status = await _stalled(operator, ns, "ImagePullFailed")
    stalled = _conditions(status)["Stalled"]
    assert "cannot be pulled (ImagePullBackOff" in stalled["message"]
    assert "check spec.image and spec.imagePullSecrets" in stalled["message"]
    assert status["phase"] == "Degraded"  # the old pods still serve
    assert _conditions(status)["Available"]["status"] == "True"


async def test_a_crash_loop_names_the_exit_code_and_the_last_words(operator: Cluster) -> None:
    ns = _ns()
    await _ready(operator, ns)
    dep = await operator.get("Deployment", ns, NAME)
    crash = waiting("CrashLoopBackOff", "back-off 40s restarting failed container")
    crash |= {
        "restartCount": 4,
        "lastState": {"terminated": {"exitCode": 2, "message": "somamemory: Milvus unreachable"}},
    }
    await server_pod(operator, ns, dep, "a", [crash])
    await operator.patch("Deployment", ns, NAME, {"status": {"readyReplicas": 1}})
    status = await _stalled(operator, ns, "CrashLoop")
    message = _conditions(status)["Stalled"]["message"]
    assert "4 restarts, exit code 2: somamemory: Milvus unreachable" in message


async def test_a_rollout_past_its_progress_deadline_stalls(operator: Cluster) -> None:
    ns = _ns()
    await _ready(operator, ns)
    progressing = {
        "type": "Progressing",
        "status": "False",
        "reason": "ProgressDeadlineExceeded",
        "message": 'ReplicaSet "memory-abc" has timed out progressing.',
    }
    available = {"type": "Available", "status": "True"}
    await operator.patch(
        "Deployment", ns, NAME, {"status": {"conditions": [available, progressing]}}
    )
    status = await _stalled(operator, ns, "ProgressDeadlineExceeded")
    assert "has timed out progressing" in _conditions(status)["Stalled"]["message"]


async def test_a_migration_whose_image_cannot_be_pulled_stalls(operator: Cluster) -> None:
    ns = _ns()
    await _create(operator, ns, _spec(image="ghcr.io/somamemory/somamemory:nope"))
    job = await _job(operator, ns)
    await job_pod(operator, ns, job, [waiting("ErrImagePull", "manifest unknown")])
    status = await _stalled(operator, ns, "ImagePullFailed")
    message = _conditions(status)["Stalled"]["message"]
    assert message.startswith(f"migration Job {job['metadata']['name']} cannot start: image ")
    assert status["phase"] == "Failed"


async def test_ready_holds_while_an_hpa_adds_pods(operator: Cluster) -> None:
    ns = _ns()
    scaling = {"enabled": True, "minReplicas": 2, "maxReplicas": 6}
    await _ready_with(operator, ns, _spec(autoscaling=scaling))
    before = _conditions(await _status(operator, ns))["Ready"]
    # The HPA's part: three pods wanted; the third is still starting. Then four, one starting.
    for wanted in (3, 4):
        await operator.patch("Deployment", ns, NAME, {"spec": {"replicas": wanted}})
        status = {"replicas": wanted, "updatedReplicas": wanted, "readyReplicas": wanted - 1}
        await operator.patch("Deployment", ns, NAME, {"status": status})

        async def counted(wanted: int = wanted) -> dict[str, Any] | None:
            # both patches seen: between them the operator may report the new desired count
            # against the old pod count, which is right for that moment but not what we wait for
            status = await _status(operator, ns)
            seen = status.get("ready") == f"{wanted - 1}/{wanted}"
            return status if seen and status.get("replicas") == wanted else None

        status = await operator.eventually(counted, f"{wanted - 1}/{wanted} ready")
        ready = _conditions(status)["Ready"]
        assert (ready["status"], ready["lastTransitionTime"]) == (
            "True",
            before["lastTransitionTime"],
        )
        assert status["phase"] == "Ready"


async def test_the_pause_annotation_stops_reconciling_one_instance(operator: Cluster) -> None:
    ns = _ns()
    await _ready(operator, ns)
    paused = {"metadata": {"annotations": {"soma.dev/paused": "true"}}}
    await operator.patch("SomaMemory", ns, NAME, paused)
    status = await operator.eventually(lambda: _phase_is(operator, ns, "Paused"), "Paused")
    reconciling = _conditions(status)["Reconciling"]
    assert (reconciling["status"], reconciling["reason"]) == ("False", "Paused")
    assert "remove it to resume" in reconciling["message"]
    assert _conditions(status)["Ready"]["status"] == "True"  # what was, stays
    await operator.call(operator.kube.delete, "Service", ns, NAME)
    await operator.patch("SomaMemory", ns, NAME, {"spec": {"image": IMAGE_V2}})
    await asyncio.sleep(2.5)  # more than one resync (2 s in these tests): nothing may happen
    assert await operator.get("Service", ns, NAME) is None
    assert len(await operator.call(operator.kube.list, "Job", ns, {})) == 1

    resumed = {"metadata": {"annotations": {"soma.dev/paused": None}}}
    await operator.patch("SomaMemory", ns, NAME, resumed)
    await operator.eventually(lambda: _phase_is(operator, ns, "Migrating"), "the new migration")
    jobs = await operator.call(operator.kube.list, "Job", ns, {})
    (fresh,) = [j for j in jobs if j["metadata"]["annotations"]["soma.dev/image"] == IMAGE_V2]
    await _finish_job(operator, ns, fresh["metadata"]["name"])
    await operator.eventually(lambda: operator.get("Service", ns, NAME), "the Service back")
