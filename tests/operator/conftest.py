"""The real operator (kopf, in-process) against kmock, shared by the operator tests.

kmock plays the API server; the tests play the cluster's controllers by patching Job and
Deployment status. One emulator and one operator serve the whole session; every test works in
its own namespace, so tests stay independent.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import pathlib
import socket
import threading
import uuid
import warnings
from collections.abc import AsyncIterator, Callable
from typing import Any

import kmock
import pytest
import pytest_asyncio
import yaml

from somamemory_operator.constants import TASK_KINDS
from somamemory_operator.kube import Kube, load_configuration

SMEM = "soma.dev/v1alpha1/somamemories"
PEERINGS = "kopf.dev/v1/clusterkopfpeerings"


class Cluster:
    """Test-side access to the emulated cluster: the operator's own client, run off-loop."""

    def __init__(self, emulator: kmock.KubernetesEmulator, kube: Kube, url: str) -> None:
        self.emulator = emulator
        self.kube = kube
        self.url = url

    async def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return await self.call(self.kube.get, kind, namespace, name)

    async def patch(self, kind: str, namespace: str, name: str, body: dict[str, Any]) -> None:
        await self.call(self.kube.patch, kind, namespace, name, body)

    async def eventually(self, probe: Callable[[], Any], what: str, timeout: float = 15.0) -> Any:
        """Poll ``probe`` (sync or async) until it returns something truthy, or fail."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            value = probe()
            if asyncio.iscoroutine(value):
                value = await value
            if value:
                return value
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            await asyncio.sleep(0.05)


class Operator(Cluster):
    """The cluster, plus where the running operator serves its metrics and liveness probe."""

    def __init__(self, cluster: Cluster, metrics_url: str, liveness_url: str) -> None:
        super().__init__(cluster.emulator, cluster.kube, cluster.url)
        self.metrics_url = metrics_url
        self.liveness_url = liveness_url


def kopf_memo(kubeconfig: pathlib.Path, **extra: Any) -> Any:
    """The memo an operator starts with: the cluster's kubeconfig (for kopf's login) and our
    client for it, and a fast resync."""
    import kopf

    kube = Kube(load_configuration(str(kubeconfig)))
    return kopf.Memo(kube=kube, kubeconfig=str(kubeconfig), resync_seconds=2.0, **extra)


def _free_port() -> int:
    """A loopback port nobody listens on (for kopf's liveness server, which cannot bind 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _declare_resources(emulator: kmock.KubernetesEmulator) -> None:
    with warnings.catch_warnings():  # kmock 0.8 reads its bundle with a deprecated call
        warnings.filterwarnings("ignore", "read_binary is deprecated", DeprecationWarning)
        emulator.resources.load_bundled()
    emulator.resources[SMEM] = kmock.ResourceInfo(
        kind="SomaMemory",
        singular="somamemory",
        namespaced=True,
        verbs={"get", "list", "watch", "create", "update", "patch", "delete"},
        shortnames={"smem"},
        subresources={"status"},
    )
    for kind, (plural, short) in TASK_KINDS.items():  # the backup and rebuild kinds
        emulator.resources[f"soma.dev/v1alpha1/{plural}"] = kmock.ResourceInfo(
            kind=kind,
            singular=kind.lower(),
            namespaced=True,
            verbs={"get", "list", "watch", "create", "update", "patch", "delete"},
            shortnames={short},
            subresources={"status"},
        )
    # kopf's peering object (its CRD ships with the operator chart): HA replicas meet there
    emulator.resources[PEERINGS] = kmock.ResourceInfo(
        kind="ClusterKopfPeering",
        singular="clusterkopfpeering",
        namespaced=False,
        verbs={"get", "list", "watch", "create", "update", "patch", "delete"},
    )


def _write_kubeconfig(url: str, path: pathlib.Path) -> pathlib.Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "kmock", "cluster": {"server": url}}],
        "users": [{"name": "test", "user": {"token": "test-token"}}],
        "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "test"}}],
        "current-context": "kmock",
    }
    path.write_text(yaml.safe_dump(config))
    return path


class _Emulator(kmock.KubernetesEmulator):
    """kmock, which stores a created object as sent, plus what an API server stamps on it: a
    uid, a resourceVersion and a creationTimestamp (kopf patches the objects it handles, with a
    resourceVersion test, so the objects the operator itself creates need one)."""

    async def _handle(self, request: Any) -> Any:
        data = request.data
        if request.action == kmock.action.CREATE and isinstance(data, dict):
            meta = data.setdefault("metadata", {})
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("resourceVersion", "1")
            meta.setdefault("creationTimestamp", f"{datetime.datetime.now(datetime.UTC):%FT%TZ}")
        return await super()._handle(request)


@contextlib.asynccontextmanager
async def _emulated(path: pathlib.Path) -> AsyncIterator[Cluster]:
    """kmock on loopback with the bundled kinds and the SomaMemory CRD's resource."""
    async with _Emulator() as emulator, kmock.Server(emulator):
        _declare_resources(emulator)
        _write_kubeconfig(str(emulator.url), path)
        trimmer = asyncio.create_task(_trim_request_log(emulator))
        try:
            yield Cluster(emulator, Kube(load_configuration(str(path))), str(emulator.url))
        finally:
            trimmer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await trimmer


@pytest_asyncio.fixture(scope="package", loop_scope="session")
async def cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    """The emulated cluster the package's operator runs against."""
    async with _emulated(tmp_path_factory.mktemp("kube") / "config") as emulated:
        yield emulated


@pytest_asyncio.fixture(loop_scope="session")
async def fresh_cluster(tmp_path: pathlib.Path) -> AsyncIterator[Cluster]:
    """A cluster of its own, for tests that start and stop operators themselves."""
    async with _emulated(tmp_path / "config") as emulated:
        yield emulated


async def _trim_request_log(emulator: kmock.KubernetesEmulator) -> None:
    """Keep kmock's request log short: it matches every request against the whole log
    (quadratic). The newest requests stay, so any request still being served is kept."""
    log = emulator._requests  # kmock 0.8 has no public way to forget requests
    while True:
        if len(log) > 80:
            del log[:-40]
        await asyncio.sleep(0.05)


class OperatorThread:
    """One real operator (kopf, in-process) on its own event loop in a thread.

    kopf cancels every task it did not start when it stops; on a shared loop that would include
    pytest's own fixture finalizers, hence the thread.
    """

    def __init__(self, memo: Any, **options: Any) -> None:
        self.memo = memo
        self.options = options
        self.ready, self.stop_flag = threading.Event(), threading.Event()
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, name="kopf-operator", daemon=True)

    def _run(self) -> None:
        import kopf

        try:
            asyncio.run(
                kopf.operator(
                    registry=kopf.get_default_registry(),
                    settings=kopf.OperatorSettings(),
                    memo=self.memo,
                    clusterwide=True,
                    ready_flag=self.ready,
                    stop_flag=self.stop_flag,
                    **self.options,
                )
            )
        except BaseException as exc:  # surfaced by stop()
            self.errors.append(exc)
            self.ready.set()

    async def start(self) -> OperatorThread:
        import somamemory_operator  # noqa: F401  (registers the handlers)

        self.thread.start()
        assert await asyncio.to_thread(self.ready.wait, 20), "the operator did not start"
        assert not self.errors, self.errors
        return self

    async def stop(self) -> None:
        self.stop_flag.set()
        await asyncio.to_thread(self.thread.join, 30)
        assert not self.thread.is_alive(), "the operator did not stop"
        assert not self.errors, self.errors


@pytest_asyncio.fixture(scope="package", loop_scope="session")
async def operator(
    cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Operator]:
    """The real operator, in-process, cluster-wide (kmock has no Namespace objects), with its
    metrics server on a free port (``metrics_port`` 0) and kopf's liveness endpoint on another.

    kopf runs on its own event loop in a thread: at shutdown it cancels every task it did not
    start, which on a shared loop would include pytest's own fixture finalizers. It stops when
    the operator tests end, not with the session: its thread would go on drawing from the global
    ``random`` (kopf picks credentials and jitters with it) while other packages' property tests
    generate examples.
    """
    path = _write_kubeconfig(cluster.url, tmp_path_factory.mktemp("kopf") / "config")
    memo = kopf_memo(path, metrics_port=0)
    liveness_url = f"http://127.0.0.1:{_free_port()}/healthz"
    running = OperatorThread(memo, standalone=True, liveness_endpoint=liveness_url)
    await running.start()
    try:
        metrics_url = f"http://127.0.0.1:{memo.metrics_port}/metrics"  # bound by startup
        yield Operator(cluster, metrics_url, liveness_url)
    finally:
        await running.stop()
    with pytest.raises(OSError):  # the cleanup handler closed the metrics server
        socket.create_connection(("127.0.0.1", memo.metrics_port), timeout=1).close()
