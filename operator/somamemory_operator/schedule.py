"""Scheduled backups: a SomaMemoryScheduledBackup makes a SomaMemoryBackup at each scheduled
time and keeps the newest ``keep`` successful ones.

:func:`tick` is the whole of it, given the time: the handler calls it with the clock, tests with
the times they choose. Runs missed while the operator was away are made up once (the latest),
as a CronJob does. Retention deletes the schedule's backups older than its ``keep``-th newest
successful one (failed ones newer than that stay, to be looked at); each backup's Job deletes
the schedule's older export files the same way, so the claim holds as many files as objects.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

from . import cron
from .constants import API_VERSION, BACKUP, LABEL_INSTANCE, LABEL_SCHEDULE, SCHEDULED_BACKUP
from .kube import ApiError, Kube
from .spec import apply_defaults
from .task_crd import SPECS
from .task_manifests import schedule_prefix, task_owner
from .tasks import ANNOTATION_KEEP

logger = logging.getLogger(__name__)
_IDLE_SECONDS = 3600.0  # a suspended or broken schedule is looked at again this often


def _time(stamp: Any) -> datetime.datetime | None:
    if not isinstance(stamp, str) or not stamp:
        return None
    try:
        when = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=datetime.UTC)


def _stamp(when: datetime.datetime) -> str:
    return when.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def backup_name(schedule: str, due: datetime.datetime) -> str:
    return schedule_prefix(schedule) + due.astimezone(datetime.UTC).strftime("%Y%m%d%H%M")


def _make_backup(
    kube: Kube, sched: dict[str, Any], spec: dict[str, Any], due: datetime.datetime
) -> str:
    meta = sched["metadata"]
    name = backup_name(meta["name"], due)
    body = {
        "apiVersion": API_VERSION,
        "kind": BACKUP,
        "metadata": {
            "name": name,
            "namespace": meta["namespace"],
            "labels": {LABEL_SCHEDULE: meta["name"], LABEL_INSTANCE: spec["backup"]["instance"]},
            "annotations": {ANNOTATION_KEEP: str(spec["keep"])},
            "ownerReferences": [task_owner({**sched, "kind": SCHEDULED_BACKUP})],
        },
        "spec": (sched.get("spec") or {}).get("backup") or spec["backup"],  # as written
    }
    try:
        kube.create(body)
        logger.info("scheduled backup %s/%s created", meta["namespace"], name)
    except ApiError as exc:
        if exc.status != 409:  # made already (a retry after a lost status write)
            raise
    return name


def retain(kube: Kube, namespace: str, schedule: str, keep: int) -> list[str]:
    """Delete the schedule's backups older than its ``keep``-th newest success; return them."""
    backups = sorted(
        kube.list(BACKUP, namespace, {LABEL_SCHEDULE: schedule}),
        key=lambda b: str(b["metadata"]["name"]),
        reverse=True,  # names end in the scheduled time: newest first
    )
    succeeded = [b for b in backups if (b.get("status") or {}).get("phase") == "Succeeded"]
    if len(succeeded) <= keep:
        return []
    oldest_kept = str(succeeded[keep - 1]["metadata"]["name"])
    deleted = []
    for backup in backups:
        name = str(backup["metadata"]["name"])
        phase = (backup.get("status") or {}).get("phase")
        if name < oldest_kept and phase in ("Succeeded", "Failed"):
            kube.delete(BACKUP, namespace, name)
            deleted.append(name)
    if deleted:
        logger.info(
            "schedule %s/%s keeps %d backups: deleted %s", namespace, schedule, keep, deleted
        )
    return deleted


def tick(kube: Kube, namespace: str, name: str, now: datetime.datetime) -> float | None:
    """Make the backup that is due (if any), apply retention, write the status; return the
    seconds until the next scheduled time (None when the schedule is gone)."""
    sched = kube.get(SCHEDULED_BACKUP, namespace, name)
    if sched is None or sched["metadata"].get("deletionTimestamp"):
        return None
    spec = apply_defaults(sched.get("spec") or {}, SPECS[SCHEDULED_BACKUP]())
    old: dict[str, Any] = sched.get("status") or {}
    status = dict(old)
    status["observedGeneration"] = int(sched["metadata"].get("generation") or 0)
    wait = _IDLE_SECONDS
    try:
        schedule = cron.parse(spec["schedule"])
    except cron.CronError as exc:
        status["message"] = f"spec.schedule: {exc}; no backups are taken until it is fixed"
        status.pop("nextScheduleTime", None)
    else:
        last = _time(old.get("lastScheduleTime"))
        created = _time(sched["metadata"].get("creationTimestamp")) or now
        if spec["suspend"]:
            due = None
        elif last is None and spec["immediate"]:
            due = now
        else:
            due = schedule.last_due(last or created, now)
        if due is not None:
            status["lastBackup"] = _make_backup(kube, sched, spec, due)
            status["lastScheduleTime"] = _stamp(due)
        retain(kube, namespace, name, spec["keep"])
        upcoming = schedule.next_after(now)
        if spec["suspend"]:
            status["message"] = "suspended (spec.suspend): no backups are taken"
            status.pop("nextScheduleTime", None)
        else:
            status["nextScheduleTime"] = _stamp(upcoming)
            status["message"] = f"next backup at {_stamp(upcoming)}, keeping {spec['keep']}"
            wait = max(1.0, (upcoming - now).total_seconds())
    if status != old:
        patch = status | {key: None for key in old if key not in status}  # merge patch: removed
        kube.patch(SCHEDULED_BACKUP, namespace, name, {"status": patch}, subresource="status")
    return wait
