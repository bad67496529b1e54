"""One level-based reconcile of a backup, restore or reindex request (:mod:`.task_crd`).

A request runs once: it waits (``Pending``) until its instance exists, has applied its schema
and runs no migration, and until what it reads exists (the claim, the backup); then its Job runs
(``Running``) and it ends ``Succeeded`` with what the Job reported, or ``Failed`` saying why.
The Job runs the image the instance's schema was migrated with (``status.migratedImage``), so
a pending image change never runs against the older schema. A backup that succeeds writes
``status.lastBackupTime`` on its instance (the operator's last-backup-age gauge reads it).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import exclusive, manifests, task_manifests
from .children import ensure, record_event
from .constants import (
    ANNOTATION_IMAGE,
    BACKUP,
    GROUP,
    LABEL_SCHEDULE,
    OPERATOR_VERSION,
    REINDEX,
    RESTORE,
)
from .kube import ApiError, Kube
from .migration import failure_tail, job_pods, job_seconds, job_state, termination_lines
from .pods import diagnose, summary
from .spec import SpecError, apply_defaults, normalize
from .status import now
from .task_crd import SPECS, TASK_CONDITIONS

logger = logging.getLogger(__name__)
TERMINAL = ("Succeeded", "Failed")
ANNOTATION_KEEP = f"{GROUP}/keep"  # on a schedule's backups: how many of its files to keep
Facts = dict[str, Any]


@dataclass
class TaskOutcome:
    """Where a request stands, and what a person needs to know."""

    phase: str
    reason: str
    message: str
    stalled: bool = False  # nothing changes until a person acts
    facts: Facts = field(default_factory=dict)


@dataclass
class Prepared:
    """What a request needs to start its Job: the renderer, given the image."""

    render: Callable[[str], dict[str, Any]]
    facts: Facts = field(default_factory=dict)


def _stalled(reason: str, message: str) -> TaskOutcome:
    return TaskOutcome("Pending", reason, message, stalled=True)


def _claim_missing(name: str, namespace: str, where: str) -> TaskOutcome:
    return _stalled(
        "ClaimNotFound",
        f"PersistentVolumeClaim {name} ({where}) does not exist in namespace {namespace}: "
        "create it" + (", or set spec.claim.size to have it created" if "claim" in where else ""),
    )


def _prepare_backup(
    kube: Kube, task: dict[str, Any], meta: dict[str, Any], spec: dict[str, Any]
) -> Prepared | TaskOutcome:
    claim = task["spec"]["claim"]
    name = task_manifests.claim_name(meta["name"], claim)
    if kube.get("PersistentVolumeClaim", meta["namespace"], name) is None:
        if not claim.get("size"):
            return _claim_missing(name, meta["namespace"], "spec.claim.name")
        try:
            kube.create(task_manifests.claim(meta, name, claim))
        except ApiError as exc:
            if exc.status != 409:
                raise
    task_meta = task["metadata"]
    schedule = (task_meta.get("labels") or {}).get(LABEL_SCHEDULE)
    keep = int((task_meta.get("annotations") or {}).get(ANNOTATION_KEEP) or 0) if schedule else 0
    prefix = task_manifests.schedule_prefix(schedule) if schedule else ""
    facts = {"claimName": name, "file": task_manifests.backup_file(task)}
    return Prepared(
        lambda image: task_manifests.backup_job(task, meta, spec, image, name, keep, prefix),
        facts,
    )


def _prepare_restore(
    kube: Kube, task: dict[str, Any], meta: dict[str, Any], spec: dict[str, Any]
) -> Prepared | TaskOutcome:
    ns, wanted = meta["namespace"], task["spec"]
    if wanted.get("backup"):
        backup = kube.get(BACKUP, ns, wanted["backup"])
        if backup is None:
            return _stalled(
                "BackupNotFound",
                f"SomaMemoryBackup {wanted['backup']} (spec.backup) does not exist in namespace "
                f"{ns}: name an existing backup, or an export file with spec.file",
            )
        done = backup.get("status") or {}
        if done.get("phase") == "Failed":
            return _stalled(
                "BackupFailed",
                f"SomaMemoryBackup {wanted['backup']} failed ({done.get('message', '')}): "
                "restore another backup",
            )
        if done.get("phase") != "Succeeded":
            return TaskOutcome(
                "Pending",
                "WaitingForBackup",
                f"waiting for SomaMemoryBackup {wanted['backup']} to succeed",
            )
        claim = done.get("claimName") or task_manifests.default_claim(meta["name"])
        path = done.get("file") or f"{wanted['backup']}.jsonl"
        where = f"of backup {wanted['backup']}"
    else:
        claim, path = wanted["file"]["claimName"], wanted["file"]["path"]
        where = "spec.file.claimName"
    if kube.get("PersistentVolumeClaim", ns, claim) is None:
        return _claim_missing(claim, ns, where)
    return Prepared(
        lambda image: task_manifests.restore_job(task, meta, spec, image, claim, path),
        {"claimName": claim, "file": path},
    )


def _prepare_reindex(
    kube: Kube, task: dict[str, Any], meta: dict[str, Any], spec: dict[str, Any]
) -> Prepared | TaskOutcome:
    return Prepared(lambda image: task_manifests.reindex_job(task, meta, spec, image))


_IMPORTED = re.compile(r"imported (\d+) memories \((\d+) new or newer\)")
_REINDEXED = re.compile(r"reindexed (\d+) memories(?:; (\d+) vectors still owed)?")


def _read_backup(lines: list[str]) -> Facts:
    try:
        said = json.loads(lines[-1])
        return {"bytes": int(said["bytes"]), "memories": int(said["memories"])}
    except (ValueError, KeyError, TypeError, IndexError):
        return {}


def _read_restore(lines: list[str]) -> Facts:
    found = _IMPORTED.search(lines[-1]) if lines else None
    return {"memories": int(found[1]), "changed": int(found[2])} if found else {}


def _read_reindex(lines: list[str]) -> Facts:
    found = _REINDEXED.search(lines[-1]) if lines else None
    if not found:
        return {}
    return {"memories": int(found[1]), "vectorsOwed": int(found[2] or 0)}


@dataclass(frozen=True)
class TaskKind:
    component: str
    verb: str
    prepare: Callable[..., Prepared | TaskOutcome]
    read: Callable[[list[str]], Facts]


KINDS: dict[str, TaskKind] = {
    BACKUP: TaskKind("backup", "backup", _prepare_backup, _read_backup),
    RESTORE: TaskKind("restore", "restore", _prepare_restore, _read_restore),
    REINDEX: TaskKind("reindex", "reindex", _prepare_reindex, _read_reindex),
}


def _instance_meta(instance: dict[str, Any], version: str) -> dict[str, Any]:
    meta = instance["metadata"]
    return {
        "name": meta["name"],
        "namespace": meta["namespace"],
        "uid": meta.get("uid", ""),
        "version": version,
    }


def _migration_unrecorded(
    kube: Kube, meta: dict[str, Any], spec: dict[str, Any], instance: dict[str, Any]
) -> str:
    """The name of the spec's migration Job when it has succeeded but the instance's status does
    not say so yet (``status.migratedImage`` is still the older image), else ""."""
    name = manifests.migration_job_name(meta, spec)
    if (instance.get("status") or {}).get("migrationJob") == name:
        return ""
    job = kube.get("Job", meta["namespace"], name)
    return name if job is not None and job_state(job)[0] == "succeeded" else ""


def _start(
    kube: Kube, kind: str, task: dict[str, Any], instance: dict[str, Any] | None, version: str
) -> TaskOutcome:
    """Start the Job once its instance and inputs are there and no migration runs."""
    ns, spec_in = task["metadata"]["namespace"], task["spec"]
    name = spec_in["instance"]
    if instance is None or instance["metadata"].get("deletionTimestamp"):
        return _stalled(
            "InstanceNotFound",
            f"SomaMemory {name} (spec.instance) does not exist in namespace {ns}: create it "
            "or name another",
        )
    try:
        spec = normalize(instance.get("spec") or {})
    except SpecError as exc:
        return _stalled("InstanceInvalid", f"SomaMemory {name} has an invalid spec: {exc}")
    meta = _instance_meta(instance, version)
    prepared = KINDS[kind].prepare(kube, task, meta, spec)
    if isinstance(prepared, TaskOutcome):
        return prepared
    with exclusive.lock(ns, name):
        migrating = exclusive.running_jobs(kube, ns, name, exclusive.MIGRATION_COMPONENTS)
        if migrating:
            return TaskOutcome(
                "Pending",
                "WaitingForMigration",
                f"waiting for the {exclusive.describe(migrating[0])} of SomaMemory {name} to "
                "finish: a data Job never runs during a migration",
                facts=prepared.facts,
            )
        if unrecorded := _migration_unrecorded(kube, meta, spec, instance):
            return TaskOutcome(
                "Pending",
                "WaitingForMigration",
                f"waiting for SomaMemory {name} to record its migration Job {unrecorded}",
                facts=prepared.facts,
            )
        image = (instance.get("status") or {}).get("migratedImage")
        if not image:
            return TaskOutcome(
                "Pending",
                "WaitingForMigration",
                f"waiting for SomaMemory {name} to apply its schema (it has no migrated image yet)",
                facts=prepared.facts,
            )
        manifest = prepared.render(image)
        ensure(kube, manifest)
    job = manifest["metadata"]["name"]
    logger.info("%s %s/%s started Job %s", kind, ns, task["metadata"]["name"], job)
    return TaskOutcome(
        "Running",
        "JobRunning",
        f"Job {job} runs {KINDS[kind].verb} with {image}",
        facts=prepared.facts | {"job": job, "image": image},
    )


def _follow(
    kube: Kube,
    kind: str,
    task: dict[str, Any],
    job: dict[str, Any],
    instance: dict[str, Any] | None,
) -> TaskOutcome:
    """Read the running or finished Job."""
    ns, name = task["metadata"]["namespace"], job["metadata"]["name"]
    image = (job["metadata"].get("annotations") or {}).get(ANNOTATION_IMAGE, "")
    facts: Facts = {"job": name, "image": image}
    if started := (job.get("status") or {}).get("startTime"):
        facts["startedAt"] = started
    state, why = job_state(job)
    pods = job_pods(kube, ns, name)
    if state == "running":
        spec = (instance or {}).get("spec") or {}
        problems = diagnose(pods, spec)
        stuck = [p for p in problems if p.stalled]
        if stuck:
            return TaskOutcome(
                "Running",
                stuck[0].reason,
                f"Job {name} cannot start: {summary(stuck)}",
                stalled=True,
                facts=facts,
            )
        detail = f"; {summary(problems)}" if problems else ""
        verb = KINDS[kind].verb
        return TaskOutcome("Running", "JobRunning", f"Job {name} runs {verb}{detail}", facts=facts)
    status = job.get("status") or {}
    if completed := status.get("completionTime"):
        facts["completedAt"] = completed
    if (seconds := job_seconds(job)) is not None:
        facts["durationSeconds"] = seconds
    if state == "failed":
        tail = failure_tail(pods)
        return TaskOutcome(
            "Failed",
            "JobFailed",
            f"Job {name} failed ({why}{': ' + tail if tail else ''}); see kubectl logs "
            f"job/{name}. Fix the cause, then create a new {kind} to retry",
            stalled=True,
            facts=facts,
        )
    facts |= KINDS[kind].read(termination_lines(pods) or [])
    facts.setdefault("completedAt", now())
    counted = f"{facts['memories']} memories" if "memories" in facts else "no count reported"
    if "bytes" in facts:
        counted += f", {facts['bytes']} bytes"
    if "changed" in facts:
        counted += f" ({facts['changed']} new or newer)"
    if facts.get("vectorsOwed"):
        counted += f"; {facts['vectorsOwed']} vectors still owed (the server's reconciler retries)"
    return TaskOutcome("Succeeded", "Succeeded", f"Job {name} succeeded: {counted}", facts=facts)


def _conditions(outcome: TaskOutcome) -> dict[str, tuple[bool, str, str]]:
    reason, message = outcome.reason, outcome.message
    if outcome.phase == "Succeeded":
        return {
            "Ready": (True, reason, message),
            "Reconciling": (False, reason, message),
            "Stalled": (False, "AsExpected", ""),
        }
    return {
        "Ready": (False, reason, message),
        "Reconciling": (not outcome.stalled and outcome.phase != "Failed", reason, message),
        "Stalled": (outcome.stalled, reason, message)
        if outcome.stalled
        else (False, "AsExpected", ""),
    }


def render(old: dict[str, Any], outcome: TaskOutcome, generation: int) -> dict[str, Any]:
    """The request's whole status for ``outcome`` (facts found earlier are kept)."""
    previous = {c.get("type"): c for c in old.get("conditions") or []}
    at = now()
    conditions = []
    for kind in TASK_CONDITIONS:
        status, reason, message = _conditions(outcome)[kind]
        text = "True" if status else "False"
        before = previous.get(kind, {})
        conditions.append(
            {
                "type": kind,
                "status": text,
                "reason": reason,
                "message": message,
                "lastTransitionTime": at
                if before.get("status") != text
                else before.get("lastTransitionTime", at),
                "observedGeneration": generation,
            }
        )
    kept = {k: v for k, v in old.items() if k not in ("conditions", "reason", "message", "phase")}
    return (
        kept
        | outcome.facts
        | {
            "phase": outcome.phase,
            "reason": outcome.reason,
            "message": outcome.message,
            "observedGeneration": generation,
            "conditions": conditions,
        }
    )


def _changed(old: dict[str, Any], new: dict[str, Any]) -> bool:
    def strip(status: dict[str, Any]) -> dict[str, Any]:
        conds = [
            {k: v for k, v in c.items() if k != "lastTransitionTime"}
            for c in status.get("conditions") or []
        ]
        return {**status, "conditions": conds}

    return strip(old) != strip(new)


def _note_backup(
    kube: Kube, task: dict[str, Any], instance: dict[str, Any] | None, outcome: TaskOutcome
) -> None:
    """A finished backup: ``status.lastBackupTime`` on the instance (if newer), and an Event."""
    if instance is None:
        return
    meta = instance["metadata"]
    name = task["metadata"]["name"]
    if outcome.phase == "Succeeded":
        when = outcome.facts["completedAt"]
        if str((instance.get("status") or {}).get("lastBackupTime") or "") < when:
            patch = {"status": {"lastBackupTime": when, "lastBackup": name}}
            kube.patch("SomaMemory", meta["namespace"], meta["name"], patch, "status")
        record_event(kube, instance, "Normal", "BackupSucceeded", f"{name}: {outcome.message}")
    else:
        record_event(kube, instance, "Warning", "BackupFailed", f"{name}: {outcome.message}")


def reconcile_task(
    kube: Kube, kind: str, namespace: str, name: str, version: str = OPERATOR_VERSION
) -> str | None:
    """Advance one request; return its phase (None if it is gone or going)."""
    task = kube.get(kind, namespace, name)
    if task is None or task["metadata"].get("deletionTimestamp"):
        return None
    old: dict[str, Any] = task.get("status") or {}
    if old.get("phase") in TERMINAL:
        return str(old["phase"])
    task["kind"] = kind
    task["spec"] = apply_defaults(task.get("spec") or {}, SPECS[kind]())
    instance = kube.get("SomaMemory", namespace, task["spec"]["instance"])
    job_name = task_manifests.job_name(task, KINDS[kind].component)
    job = kube.get("Job", namespace, job_name)
    if job is not None:
        outcome = _follow(kube, kind, task, job, instance)
    elif old.get("job"):
        outcome = TaskOutcome(
            "Failed",
            "JobGone",
            f"Job {old['job']} was deleted before it finished: create a new {kind} to retry",
            stalled=True,
        )
    else:
        outcome = _start(kube, kind, task, instance, version)
    if kind == BACKUP and outcome.phase in TERMINAL:
        _note_backup(kube, task, instance, outcome)
    elif outcome.phase in TERMINAL and instance is not None:
        level = "Normal" if outcome.phase == "Succeeded" else "Warning"
        record_event(
            kube, instance, level, f"{kind[10:]}{outcome.phase}", f"{name}: {outcome.message}"
        )
    generation = int(task["metadata"].get("generation") or 0)
    new = render(old, outcome, generation)
    if _changed(old, new):
        kube.patch(kind, namespace, name, {"status": new}, subresource="status")
        logger.info("%s %s/%s is %s: %s", kind, namespace, name, outcome.phase, outcome.message)
    return outcome.phase
