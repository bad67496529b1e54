"""The migration gate: no server pod runs an image before its schema is applied, and no image
older than the applied schema is ever rolled out (no one-way door).

For a new image (or database) the gate runs, in order:
1. when the database's revision is known (``status.schemaRevision``), a schema check Job
   (``somamemory migrate --print-revisions``) lists the revisions the image knows; if the
   database's is not among them the image is older than the schema: refused, pods left alone;
2. once no backup, restore or reindex Job of the instance runs (and, with
   ``spec.migration.backupFirst``, a backup has succeeded: :mod:`.premigration`), the migration
   Job (``somamemory migrate``), which reports the revision it reached.
Each Job's pods are read for what keeps them from starting (a missing Secret, a pull error).
"""

from __future__ import annotations

from typing import Any

from . import exclusive, manifests
from .children import apply, record_event
from .kube import Kube
from .migration import (
    UNKNOWN_REVISION,
    failure_tail,
    job_pods,
    job_seconds,
    job_state,
    schema_revision,
    termination_lines,
)
from .outcomes import stalled, waiting_on_pods
from .pods import diagnose
from .premigration import before_migration
from .status import Condition, Outcome, Rollout

Facts = dict[str, Any]


def _kept(live: Rollout) -> str:
    return "the running Deployment is left untouched" if live.exists else "nothing was deployed"


def _job(kube: Kube, owner: dict[str, Any], manifest: dict[str, Any]) -> dict[str, Any]:
    meta = manifest["metadata"]
    job = kube.get("Job", meta["namespace"], meta["name"])
    if job is None:
        apply(kube, owner, manifest)
        return {}
    return job


def _check_schema(
    kube: Kube,
    owner: dict[str, Any],
    meta: dict[str, Any],
    spec: dict[str, Any],
    old_status: dict[str, Any],
    live: Rollout,
) -> Outcome | None:
    """Refuse an image that does not know the database's revision; None when it does."""
    applied, image = old_status["schemaRevision"], spec["image"]
    name = manifests.schema_check_job_name(meta, spec)
    state, why = job_state(_job(kube, owner, manifests.schema_check_job(meta, spec)))
    pods = job_pods(kube, meta["namespace"], name)
    checking = Condition(False, "CheckingSchema", f"checking which schema {image} needs")
    if state == "running":
        return waiting_on_pods(
            live,
            diagnose(pods, spec),
            f"schema check Job {name} cannot start",
            "CheckingSchema",
            f"schema check Job {name} is reading which schema {image} needs",
            checking,
        )
    revisions = termination_lines(pods) if state == "succeeded" else None
    if not revisions:
        tail = failure_tail(pods)
        detail = why or f"Job {name} left no list of revisions in its pod's termination message"
        message = (
            f"schema check of {image} failed ({detail}{': ' + tail if tail else ''}); "
            f"{_kept(live)}. Fix the cause, then delete Job {name} to retry"
        )
        return stalled(live, "SchemaCheckFailed", message)
    if applied in revisions:
        return None
    before = old_status.get("migratedImage", "an earlier image")
    message = (
        f"{image} is older than the database schema: it knows revisions up to {revisions[-1]}, "
        f"the database is at {applied} (applied for {before}). Nothing was changed and "
        f"{_kept(live)}. Set spec.image to an image that knows {applied}; a downgrade is never "
        "automatic: downgrade the schema by hand (alembic downgrade, with the newer image) first"
    )
    return stalled(live, "ImageOlderThanSchema", message)


def migrate_first(
    kube: Kube,
    owner: dict[str, Any],
    meta: dict[str, Any],
    spec: dict[str, Any],
    old_status: dict[str, Any],
    live: Rollout,
) -> Outcome | Facts:
    """Check and migrate for ``spec.image``: an Outcome while that is not done (or refused),
    else the facts of the applied migration."""
    if old_status.get("schemaRevision") not in (None, "", UNKNOWN_REVISION):
        refusal = _check_schema(kube, owner, meta, spec, old_status, live)
        if refusal is not None:
            return refusal
    name, image = manifests.migration_job_name(meta, spec), spec["image"]
    with exclusive.lock(meta["namespace"], meta["name"]):
        if kube.get("Job", meta["namespace"], name) is None:
            waiting = before_migration(kube, meta, spec, old_status, live)
            if waiting is not None:
                return waiting
        job = _job(kube, owner, manifests.migration_job(meta, spec))
    if not job:
        record_event(
            kube, owner, "Normal", "MigrationStarted", f"Job {name} migrates the schema for {image}"
        )
    state, why = job_state(job)
    pods = job_pods(kube, meta["namespace"], name)
    if state == "running":
        message = f"migration Job {name} is running for {image}"
        return waiting_on_pods(
            live,
            diagnose(pods, spec),
            f"migration Job {name} cannot start",
            "Migrating",
            message,
            Condition(False, "Migrating", message),
        )
    if state == "failed":
        tail = failure_tail(pods)
        message = (
            f"migration Job {name} failed ({why}{': ' + tail if tail else ''}); {_kept(live)}. "
            "Fix the cause, then change spec.image or delete the Job to retry"
        )
        return stalled(live, "MigrationFailed", message)
    revision = schema_revision(pods)
    record_event(
        kube, owner, "Normal", "MigrationSucceeded", f"Job {name} applied schema {revision}"
    )
    facts: Facts = {"migratedImage": image, "migrationJob": name, "schemaRevision": revision}
    if (seconds := job_seconds(job)) is not None:
        facts["migrationSeconds"] = seconds
    return facts
