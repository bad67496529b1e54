"""Upgrading the operator restarts no healthy instance whose spec did not change: the new
version re-applies everything, stamps its version on the children's metadata, and leaves every
pod template (whose change is what restarts pods) exactly as it was."""

from __future__ import annotations

import asyncio
import pathlib
from typing import TYPE_CHECKING, Any

from tests.operator.conftest import OperatorThread, _write_kubeconfig, kopf_memo
from tests.operator.test_operator_lifecycle import NAME, _conditions, _ns, _ready, _status

if TYPE_CHECKING:
    from tests.operator.conftest import Cluster


async def _operator(cluster: Cluster, tmp: pathlib.Path, version: str) -> OperatorThread:
    memo = kopf_memo(_write_kubeconfig(cluster.url, tmp / f"{version}.kubeconfig"))
    memo.operator_version = version
    return await OperatorThread(memo, standalone=True).start()


async def test_upgrading_the_operator_does_not_restart_healthy_instances(
    fresh_cluster: Cluster, tmp_path: pathlib.Path
) -> None:
    cluster = fresh_cluster
    old = await _operator(cluster, tmp_path, "0.1.0")
    ns = _ns()
    try:
        await _ready(cluster, ns)
    finally:
        await old.stop()
    before: dict[str, Any] = await cluster.get("Deployment", ns, NAME)
    ready_since = _conditions(await _status(cluster, ns))["Ready"]["lastTransitionTime"]
    jobs = len(await cluster.call(cluster.kube.list, "Job", ns, {}))

    new = await _operator(cluster, tmp_path, "0.2.0")
    try:

        async def stamped() -> dict[str, Any] | None:
            dep = await cluster.get("Deployment", ns, NAME)
            seen = dep["metadata"]["annotations"].get("soma.dev/operator-version")
            return dep if seen == "0.2.0" else None

        after = await cluster.eventually(stamped, "the new operator's stamp on the Deployment")
        await asyncio.sleep(2.5)  # a resync more: still nothing for the pods
        after = await cluster.get("Deployment", ns, NAME)
    finally:
        await new.stop()
    assert after["spec"]["template"] == before["spec"]["template"]  # no pod restarts
    assert after["spec"]["replicas"] == before["spec"]["replicas"]
    status = await _status(cluster, ns)
    assert status["phase"] == "Ready"
    assert _conditions(status)["Ready"]["lastTransitionTime"] == ready_since  # never flipped
    assert len(await cluster.call(cluster.kube.list, "Job", ns, {})) == jobs  # no new migration
    for kind in ("ConfigMap", "Service"):
        child = await cluster.get(kind, ns, NAME)
        assert child["metadata"]["annotations"]["soma.dev/operator-version"] == "0.2.0"
