"""HA: two operator replicas against one cluster; kopf's peering lets exactly one reconcile, and
the other takes over when it leaves. Each replica is a real kopf operator."""

from __future__ import annotations

import asyncio
import contextlib
import json
import pathlib
import urllib.request
from typing import TYPE_CHECKING, Any

from somamemory_operator.peering import seniority_priority
from tests.operator.conftest import OperatorThread, _write_kubeconfig, kopf_memo
from tests.operator.test_operator_lifecycle import NAME, _create, _ns, _spec

if TYPE_CHECKING:
    from tests.operator.conftest import Cluster

PEERING = "somamemory-operator"


def test_an_older_replica_outranks_a_newer_one_and_ties_are_unlikely() -> None:
    assert seniority_priority(1_800_000_000.0, 0) > seniority_priority(1_800_000_000.001, 999)
    assert seniority_priority(1_800_000_000.0, 1) != seniority_priority(1_800_000_000.0, 2)
    assert 0 < seniority_priority() < 2**53  # a JSON number every client reads exactly


def _create_peering(url: str) -> None:
    """The ClusterKopfPeering the operator chart creates (the operator never does)."""
    body = {
        "apiVersion": "kopf.dev/v1",
        "kind": "ClusterKopfPeering",
        "metadata": {"name": PEERING},
    }
    request = urllib.request.Request(
        f"{url}/apis/kopf.dev/v1/clusterkopfpeerings",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status in (200, 201)


def _peers(url: str) -> bool:
    """True once both replicas have written their keep-alive into the peering object."""
    address = f"{url}/apis/kopf.dev/v1/clusterkopfpeerings/{PEERING}"
    with urllib.request.urlopen(address, timeout=10) as got:
        status = json.loads(got.read()).get("status") or {}
    return {"replica-a", "replica-b"} <= set(status)


async def _replica(cluster: Cluster, tmp: pathlib.Path, identity: str) -> tuple[Any, Any]:
    memo = kopf_memo(_write_kubeconfig(cluster.url, tmp / f"{identity}.kubeconfig"))
    running = OperatorThread(memo, peering_name=PEERING, identity=identity)
    return memo, await running.start()


async def test_two_replicas_never_both_reconcile_and_one_takes_over(
    fresh_cluster: Cluster, tmp_path: pathlib.Path
) -> None:
    cluster = fresh_cluster
    await asyncio.to_thread(_create_peering, cluster.url)
    memo_a, replica_a = await _replica(cluster, tmp_path, "replica-a")
    memo_b, replica_b = await _replica(cluster, tmp_path, "replica-b")
    ns = _ns()
    key = (ns, NAME)
    overlaps: list[str] = []
    leaders: set[str] = set()

    async def watch() -> None:
        """Sample who runs the instance's reconcile loop, every few milliseconds."""
        while True:
            running = {n for n, m in (("a", memo_a), ("b", memo_b)) if key in m.get("wakeups", {})}
            if len(running) > 1:
                overlaps.append("both replicas ran the reconcile loop")
            leaders.update(running)
            await asyncio.sleep(0.005)

    # Both replicas have announced themselves. (kopf's peering is no lock: two replicas started
    # in the same instant may both act until each has seen the other's first keep-alive; a
    # reconcile is idempotent, so that costs a repeated write at worst.)
    await cluster.eventually(lambda: asyncio.to_thread(_peers, cluster.url), "both peers", 30)
    watcher = asyncio.create_task(watch())
    try:
        await _create(cluster, ns, _spec())
        await cluster.eventually(lambda: cluster.get("ConfigMap", ns, NAME), "the ConfigMap")
        await asyncio.sleep(2.5)  # a resync and more: the paused replica must stay paused
        assert leaders == {"a"}, leaders  # the older replica leads
        await replica_a.stop()  # a rolling update or a lost node: the other one takes over
        await cluster.call(cluster.kube.delete, "ConfigMap", ns, NAME)
        await cluster.eventually(
            lambda: cluster.get("ConfigMap", ns, NAME), "the ConfigMap restored by replica b", 30
        )
        assert leaders == {"a", "b"}
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        await replica_b.stop()
        if replica_a.thread.is_alive():
            await replica_a.stop()
    assert not overlaps, overlaps
    events = await cluster.call(cluster.kube.list, "Event", ns, {})
    created = [e for e in events if e["reason"] == "ConfigMapCreated"]
    assert len(created) == 2  # once by each leader in turn, never twice at once
