"""kopf wiring: one reconcile loop (daemon) per SomaMemory, woken by its own and its
children's watch events, plus a periodic resync for anything a watch missed.

The handlers stay thin; the work is in :mod:`.reconcile` and :mod:`.manifests`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import os
from typing import Any

import kopf

from . import metrics
from .constants import (
    BACKUP,
    GROUP,
    KIND,
    LABEL_INSTANCE,
    LABEL_MANAGED_BY,
    LABEL_SCHEDULE,
    MANAGER,
    OPERATOR_VERSION,
    PLURAL,
    REINDEX,
    RESTORE,
    SCHEDULED_BACKUP,
    TASK_KINDS,
    VERSION,
)
from .kube import Kube, bearer_token, load_configuration
from .peering import seniority_priority
from .reconcile import reconcile
from .schedule import tick
from .tasks import TERMINAL, reconcile_task

logger = logging.getLogger(__name__)
CHILD_SELECTOR = {LABEL_MANAGED_BY: MANAGER}
DEFAULT_RESYNC_SECONDS = 60.0  # drift nobody watched for (HPA, PDB edits) is fixed this often
ERROR_BACKOFF_SECONDS = 5.0


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    """Tune kopf and build the API client once (tests may hand one in through ``memo``)."""
    # Our own finalizer name: kopf needs one on objects that have a daemon, to stop it cleanly.
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    # Keep kopf's bookkeeping out of status: the CRD's status schema is ours alone.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP)
    # Least privilege: no cluster-wide watch on CRDs or namespaces just to rediscover resources.
    settings.scanning.disabled = True
    # We post our own, named Events for each step; kopf adds only its warnings and errors.
    settings.posting.level = logging.WARNING
    # HA: with peering on (the chart's --peering), the oldest replica reconciles, the rest wait.
    if not settings.peering.standalone and settings.peering.priority == 0:
        settings.peering.priority = seniority_priority()
        logger.info("peering %r with priority %d", settings.peering.name, settings.peering.priority)
    if memo.get("kube") is None:
        memo.kube = Kube(load_configuration(os.environ.get("KUBECONFIG")))
    memo.setdefault("wakeups", {})
    memo.setdefault("task_wakeups", {})  # (kind, namespace, name) -> (instance, Event)
    memo.setdefault("clock", lambda: datetime.datetime.now(datetime.UTC))
    memo.setdefault(
        "resync_seconds",
        float(os.environ.get("SOMA_OPERATOR_RESYNC_SECONDS", DEFAULT_RESYNC_SECONDS)),
    )
    # ``metrics_port`` 0 binds a free port; the bound one is left in ``memo.metrics_port``.
    memo.setdefault("metrics_port", os.environ.get("SOMA_OPERATOR_METRICS_PORT") or None)
    if memo.metrics_port is not None and memo.get("metrics_server") is None:
        memo.metrics_server = metrics.serve(int(memo.metrics_port))
        memo.metrics_port = memo.metrics_server.server_port
        logger.info("operator metrics on :%s/metrics", memo.metrics_port)


@kopf.on.cleanup()
def stop_metrics(memo: kopf.Memo, **_: Any) -> None:
    """Release the metrics port when the operator stops (a restart in-process can bind it)."""
    server = memo.pop("metrics_server", None)
    if server is not None:
        metrics.stop(server)


@kopf.on.login()
def login(memo: kopf.Memo, **_: Any) -> kopf.ConnectionInfo:
    """Log kopf in with the same credentials as our client: in-cluster, else ``$KUBECONFIG``
    (or the file an embedding program names in ``memo.kubeconfig``)."""
    cfg = load_configuration(memo.get("kubeconfig") or os.environ.get("KUBECONFIG"))
    header = bearer_token(cfg)
    scheme, _sep, token = header.partition(" ") if header else ("", "", "")
    return kopf.ConnectionInfo(
        server=cfg.host,
        ca_path=cfg.ssl_ca_cert,
        insecure=not cfg.verify_ssl,
        scheme=scheme or None,
        token=token or None,
        certificate_path=cfg.cert_file,
        private_key_path=cfg.key_file,
    )


@kopf.on.probe(id="somamemories")
def watched_count(memo: kopf.Memo, **_: Any) -> int:
    """Reported by the liveness endpoint: how many SomaMemory loops are running."""
    return len(memo.get("wakeups", {}))


def _run_once(kube: Kube, namespace: str, name: str, version: str) -> None:
    with metrics.RECONCILE_SECONDS.time():
        try:
            outcome = reconcile(kube, namespace, name, version)
        except Exception:
            metrics.RECONCILES.labels(phase="error").inc()
            raise
    metrics.RECONCILES.labels(phase=outcome.phase if outcome else "gone").inc()


async def _sleep_until_woken(wakeup: asyncio.Event, stopped: Any, timeout: float) -> None:
    waiters = {asyncio.ensure_future(wakeup.wait()), asyncio.ensure_future(stopped.wait())}
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*waiters, return_exceptions=True)


@kopf.daemon(GROUP, VERSION, PLURAL, id="reconciler", cancellation_timeout=10.0)
async def reconciler(stopped: Any, namespace: str | None, name: str, memo: Any, **_: Any) -> None:
    """Reconcile now, then again whenever poked or every ``resync_seconds``."""
    namespace = namespace or ""
    key = (namespace, name)
    wakeup = memo.wakeups.setdefault(key, asyncio.Event())
    metrics.INSTANCES.revive(namespace, name)
    try:
        while not stopped:
            wakeup.clear()
            delay = memo.resync_seconds
            try:
                version = memo.get("operator_version", OPERATOR_VERSION)
                await asyncio.to_thread(_run_once, memo.kube, namespace, name, version)
            except Exception:
                logger.exception("reconcile of %s/%s failed; retrying", namespace, name)
                delay = min(delay, ERROR_BACKOFF_SECONDS)
            await _sleep_until_woken(wakeup, stopped, delay)
    finally:
        memo.wakeups.pop(key, None)
        # deleted, or another replica took over; a reconcile still in its thread is ignored
        metrics.INSTANCES.retire(namespace, name)


def _poke(memo: kopf.Memo, namespace: str | None, name: str | None) -> None:
    wakeup = memo.get("wakeups", {}).get((namespace, name))
    if wakeup is not None:
        wakeup.set()


@kopf.on.event(GROUP, VERSION, PLURAL)
async def somamemory_changed(namespace: str | None, name: str, memo: Any, **_: Any) -> None:
    """Any change of the SomaMemory itself (spec edit, deletion) wakes its loop, and the
    requests on it (a recorded migration lets them start)."""
    _poke(memo, namespace, name)
    _poke_requests(memo, namespace, name)


@kopf.on.event("", "v1", "pods", labels=CHILD_SELECTOR)
async def pod_changed(body: kopf.Body, namespace: str | None, memo: Any, **_: Any) -> None:
    """A server or Job pod changed (it started, failed to pull, crashed): wake its instance."""
    _poke(memo, namespace, (body.metadata.labels or {}).get(LABEL_INSTANCE))


@kopf.on.event("apps", "v1", "deployments", labels=CHILD_SELECTOR)
@kopf.on.event("batch", "v1", "jobs", labels=CHILD_SELECTOR)
@kopf.on.event("", "v1", "services", labels=CHILD_SELECTOR)
@kopf.on.event("", "v1", "configmaps", labels=CHILD_SELECTOR)
async def child_changed(body: kopf.Body, namespace: str | None, memo: Any, **_: Any) -> None:
    """A child changed, finished or vanished: wake its owner's loop."""
    for ref in body.metadata.get("ownerReferences") or []:
        if ref.get("kind") == KIND and ref.get("controller"):
            _poke(memo, namespace, ref.get("name"))


# ---- backups, restores, reindexes (tasks.py) and scheduled backups (schedule.py) ----------


async def _task_loop(
    kind: str, stopped: Any, namespace: str | None, name: str, spec: Any, memo: Any
) -> None:
    """Advance one request whenever poked (or every ``resync_seconds``) until it has finished;
    then wake its instance, whose migration may be waiting for it."""
    namespace = namespace or ""
    key = (kind, namespace, name)
    instance = str((spec or {}).get("instance") or "")
    wakeup = asyncio.Event()
    memo.task_wakeups[key] = (instance, wakeup)
    try:
        while not stopped:
            wakeup.clear()
            delay = memo.resync_seconds
            try:
                version = memo.get("operator_version", OPERATOR_VERSION)
                phase = await asyncio.to_thread(
                    reconcile_task, memo.kube, kind, namespace, name, version
                )
            except Exception:
                logger.exception("%s %s/%s failed; retrying", kind, namespace, name)
                delay = min(delay, ERROR_BACKOFF_SECONDS)
            else:
                if phase is None or phase in TERMINAL:
                    _poke(memo, namespace, instance)
                    return
            await _sleep_until_woken(wakeup, stopped, delay)
    finally:
        memo.task_wakeups.pop(key, None)


@kopf.daemon(GROUP, VERSION, TASK_KINDS[BACKUP][0], id="backup", cancellation_timeout=10.0)
async def backup_daemon(
    stopped: Any, namespace: str | None, name: str, spec: Any, memo: Any, **_: Any
) -> None:
    """A SomaMemoryBackup: its export Job, then its size, count and duration."""
    await _task_loop(BACKUP, stopped, namespace, name, spec, memo)


@kopf.daemon(GROUP, VERSION, TASK_KINDS[RESTORE][0], id="restore", cancellation_timeout=10.0)
async def restore_daemon(
    stopped: Any, namespace: str | None, name: str, spec: Any, memo: Any, **_: Any
) -> None:
    """A SomaMemoryRestore: its import Job."""
    await _task_loop(RESTORE, stopped, namespace, name, spec, memo)


@kopf.daemon(GROUP, VERSION, TASK_KINDS[REINDEX][0], id="reindex", cancellation_timeout=10.0)
async def reindex_daemon(
    stopped: Any, namespace: str | None, name: str, spec: Any, memo: Any, **_: Any
) -> None:
    """A SomaMemoryReindex: its reindex Job."""
    await _task_loop(REINDEX, stopped, namespace, name, spec, memo)


@kopf.daemon(
    GROUP, VERSION, TASK_KINDS[SCHEDULED_BACKUP][0], id="schedule", cancellation_timeout=10.0
)
async def schedule_daemon(
    stopped: Any, namespace: str | None, name: str, memo: Any, **_: Any
) -> None:
    """A SomaMemoryScheduledBackup: a backup at each scheduled time, the newest ones kept."""
    namespace = namespace or ""
    key = (SCHEDULED_BACKUP, namespace, name)
    wakeup = asyncio.Event()
    memo.task_wakeups[key] = ("", wakeup)
    try:
        while not stopped:
            wakeup.clear()
            delay = memo.resync_seconds
            try:
                wait = await asyncio.to_thread(tick, memo.kube, namespace, name, memo.clock())
            except Exception:
                logger.exception("schedule %s/%s failed; retrying", namespace, name)
                delay = min(delay, ERROR_BACKOFF_SECONDS)
            else:
                if wait is None:
                    return
                delay = min(wait, max(delay, 30.0))  # retention follows backups it is poked by
            await _sleep_until_woken(wakeup, stopped, delay)
    finally:
        memo.task_wakeups.pop(key, None)


def _poke_task(memo: Any, kind: str, namespace: str | None, name: str | None) -> None:
    entry = memo.get("task_wakeups", {}).get((kind, namespace or "", name))
    if entry is not None:
        entry[1].set()


def _poke_requests(memo: Any, namespace: str | None, instance: str | None) -> None:
    """Wake every backup, restore and reindex on ``instance``."""
    for (kind, ns, name), (wanted, _event) in list(memo.get("task_wakeups", {}).items()):
        if instance and ns == (namespace or "") and wanted == instance:
            _poke_task(memo, kind, ns, name)


@kopf.on.event(GROUP, VERSION, TASK_KINDS[BACKUP][0])
async def backup_changed(
    body: kopf.Body, namespace: str | None, name: str, memo: Any, **_: Any
) -> None:
    """A backup changed: wake it, and its schedule (retention counts its successes)."""
    _poke_task(memo, BACKUP, namespace, name)
    _poke_requests(memo, namespace, body.spec.get("instance"))  # a restore may be waiting
    if schedule := (body.metadata.labels or {}).get(LABEL_SCHEDULE):
        _poke_task(memo, SCHEDULED_BACKUP, namespace, schedule)


@kopf.on.event(GROUP, VERSION, TASK_KINDS[RESTORE][0])
@kopf.on.event(GROUP, VERSION, TASK_KINDS[REINDEX][0])
@kopf.on.event(GROUP, VERSION, TASK_KINDS[SCHEDULED_BACKUP][0])
async def task_changed(
    body: kopf.Body, namespace: str | None, name: str, memo: Any, **_: Any
) -> None:
    """A request or schedule changed (its spec, its deletion): wake its loop."""
    _poke_task(memo, str(body.get("kind", "")), namespace, name)


@kopf.on.event("batch", "v1", "jobs", labels=CHILD_SELECTOR, id="job_of_instance")
async def job_changed(body: kopf.Body, namespace: str | None, memo: Any, **_: Any) -> None:
    """Any Job of an instance changed: a migration and the data Jobs wait for each other, so
    wake the instance and every request on it."""
    instance = (body.metadata.labels or {}).get(LABEL_INSTANCE)
    _poke(memo, namespace, instance)
    _poke_requests(memo, namespace, instance)
    for ref in body.metadata.get("ownerReferences") or []:
        if ref.get("kind") in TASK_KINDS:
            _poke_task(memo, ref["kind"], namespace, ref.get("name"))
