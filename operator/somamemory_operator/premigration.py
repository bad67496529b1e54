"""What a migration waits for before its Job starts: no backup, restore or reindex Job of the
instance runs (:mod:`.exclusive`), and, with ``spec.migration.backupFirst``, a backup of the
database as it is has succeeded. Called by the gate with the instance's lock held."""

from __future__ import annotations

from typing import Any

from . import exclusive, manifests
from .constants import API_VERSION, BACKUP
from .kube import ApiError, Kube
from .outcomes import in_progress, stalled
from .status import Condition, Outcome, Rollout
from .task_manifests import digest


def pre_migration_backup_name(meta: dict[str, Any], spec: dict[str, Any]) -> str:
    """One backup per migration (per migration Job name)."""
    return f"{meta['name'][:40]}-premigrate-{digest(manifests.migration_job_name(meta, spec))}"


def _waiting(live: Rollout, reason: str, message: str) -> Outcome:
    return in_progress(live, "Migrating", reason, message, Condition(False, reason, message))


def _backup_first(
    kube: Kube,
    meta: dict[str, Any],
    spec: dict[str, Any],
    old_status: dict[str, Any],
    live: Rollout,
) -> Outcome | None:
    # a first install has nothing to back up: only a database a migration already ran on
    if not spec["migration"]["backupFirst"] or not old_status.get("migrationJob"):
        return None
    ns, image = meta["namespace"], spec["image"]
    name = pre_migration_backup_name(meta, spec)
    backup = kube.get(BACKUP, ns, name)
    if backup is None:
        body: dict[str, Any] = {
            "apiVersion": API_VERSION,
            "kind": BACKUP,
            "metadata": {
                "name": name,
                "namespace": ns,
                "labels": manifests.labels(meta, "pre-migration-backup"),
                "ownerReferences": [manifests.owner_reference(meta)],
            },
            "spec": {"instance": meta["name"], "claim": spec["migration"]["backupClaim"]},
        }
        try:
            kube.create(body)
        except ApiError as exc:
            if exc.status != 409:
                raise
        backup = body
    status = backup.get("status") or {}
    said = status.get("message") or "not started yet"
    if status.get("phase") == "Succeeded":
        return None
    what = f"SomaMemoryBackup {name}, taken before migrating to {image}"
    if status.get("phase") == "Failed":
        return stalled(
            live,
            "BackupBeforeMigrationFailed",
            f"{what}, failed ({said}); nothing was migrated. Fix the cause and delete "
            f"SomaMemoryBackup {name} to retry, or set spec.migration.backupFirst to false",
        )
    stuck = any(
        c.get("type") == "Stalled" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
    if stuck:
        return stalled(live, "BackupBeforeMigrationStalled", f"{what}, cannot run: {said}")
    return _waiting(live, "BackingUpBeforeMigration", f"{what}, is not done: {said}")


def before_migration(
    kube: Kube,
    meta: dict[str, Any],
    spec: dict[str, Any],
    old_status: dict[str, Any],
    live: Rollout,
) -> Outcome | None:
    """An Outcome while the migration must wait, else None (it may start now)."""
    running = exclusive.running_jobs(
        kube, meta["namespace"], meta["name"], exclusive.DATA_COMPONENTS
    )
    if running:
        return _waiting(
            live,
            "WaitingForDataJob",
            f"the migration to {spec['image']} waits for {exclusive.describe(running[0])} to "
            "finish: a migration never runs during a backup, restore or reindex",
        )
    return _backup_first(kube, meta, spec, old_status, live)
