"""One level-based reconcile of a SomaMemory: read, converge the children, write the status.

Order: ConfigMap -> migration Job -> (only once that Job succeeded) Deployment, Service, HPA,
PodDisruptionBudget. Every step is idempotent; running it twice changes nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from . import manifests
from .children import ensure, record_event, remove
from .kube import Kube
from .migration import job_state, schema_revision
from .spec import SpecError, check_name, normalize
from .status import Condition, Outcome, deployment_readiness, render_status, status_changed

logger = logging.getLogger(__name__)
NORMAL, WARNING = "Normal", "Warning"
_AS_EXPECTED = Condition(False, "AsExpected", "")


def reconcile(kube: Kube, namespace: str, name: str) -> Outcome | None:
    """Bring one SomaMemory's children in line with its spec; None if it is gone or going."""
    obj = kube.get("SomaMemory", namespace, name)
    if obj is None or obj["metadata"].get("deletionTimestamp"):
        return None
    meta = {"name": name, "namespace": namespace, "uid": obj["metadata"].get("uid", "")}
    old_status: dict[str, Any] = obj.get("status") or {}
    try:
        check_name(name)
        spec = normalize(obj.get("spec") or {})
    except SpecError as exc:
        outcome = _invalid(kube, meta, str(exc))
    else:
        outcome = _converge(kube, obj, meta, spec, old_status)
    generation = int(obj["metadata"].get("generation") or 0)
    new_status = render_status(old_status, outcome, generation)
    if status_changed(old_status, new_status):
        kube.patch("SomaMemory", namespace, name, {"status": new_status}, subresource="status")
        if (old_status.get("phase"), old_status.get("message")) != (outcome.phase, outcome.message):
            kind = WARNING if outcome.phase in ("Failed", "Degraded") else NORMAL
            record_event(kube, obj, kind, outcome.phase, outcome.message)
            logger.info(
                "SomaMemory %s/%s is %s: %s", namespace, name, outcome.phase, outcome.message
            )
    return outcome


def _availability(deployment: dict[str, Any] | None) -> tuple[Condition, dict[str, int]]:
    desired, ready, available, _ = deployment_readiness(deployment)
    if deployment is None:
        cond = Condition(False, "NotDeployed", "no Deployment yet")
    elif available:
        cond = Condition(True, "MinimumReplicasAvailable", f"{ready}/{desired} replicas ready")
    else:
        cond = Condition(False, "NoReplicasAvailable", f"{ready}/{desired} replicas ready")
    return cond, {"replicas": desired, "readyReplicas": ready}


def _invalid(kube: Kube, meta: dict[str, Any], problem: str) -> Outcome:
    """Refuse the spec: apply nothing, keep whatever already runs, say exactly why."""
    live = kube.get("Deployment", meta["namespace"], meta["name"])
    return _refused(live, "InvalidSpec", f"invalid spec, nothing applied: {problem}")


def _refused(live: dict[str, Any] | None, reason: str, message: str) -> Outcome:
    """Degraded if a Deployment still runs (it is kept), Failed if nothing does."""
    available, facts = _availability(live)
    refused = Condition(False, reason, message)
    return Outcome(
        phase="Degraded" if live is not None else "Failed",
        message=message,
        conditions={
            "MigrationsApplied": refused,
            "Available": available,
            "Ready": refused,
            "Degraded": Condition(True, reason, message),
        },
        facts=facts,
    )


def _converge(
    kube: Kube,
    owner: dict[str, Any],
    meta: dict[str, Any],
    spec: dict[str, Any],
    old_status: dict[str, Any],
) -> Outcome:
    ns, name = meta["namespace"], meta["name"]
    cm = manifests.configmap(meta, spec)
    _step(kube, owner, cm)
    facts: dict[str, Any] = {}
    job_name = manifests.migration_job_name(meta, spec)
    if old_status.get("migrationJob") != job_name:
        job = kube.get("Job", ns, job_name)
        if job is None:
            _step(kube, owner, manifests.migration_job(meta, spec))
            record_event(
                kube,
                owner,
                NORMAL,
                "MigrationStarted",
                f"Job {job_name} migrates the schema for {spec['image']}",
            )
            job = {}
        state, why = job_state(job)
        live = kube.get("Deployment", ns, name)
        if state == "running":
            return _migrating(live, job_name, spec["image"])
        if state == "failed":
            return _migration_failed(live, job_name, why)
        facts = {
            "migratedImage": spec["image"],
            "migrationJob": job_name,
            "schemaRevision": schema_revision(kube, ns, job_name),
        }
        record_event(
            kube,
            owner,
            NORMAL,
            "MigrationSucceeded",
            f"Job {job_name} applied schema {facts['schemaRevision']}",
        )
    _step(kube, owner, manifests.deployment(meta, spec, manifests.config_hash(cm)))
    _step(kube, owner, manifests.service(meta, spec))
    for kind, optional in (
        ("HorizontalPodAutoscaler", manifests.autoscaler(meta, spec)),
        ("PodDisruptionBudget", manifests.disruption_budget(meta, spec)),
    ):
        if optional is None:
            remove(kube, kind, ns, name)
        else:
            _step(kube, owner, optional)
    return _deployed(kube.get("Deployment", ns, name), spec, facts, old_status)


def _step(kube: Kube, owner: dict[str, Any], manifest: dict[str, Any]) -> None:
    action = ensure(kube, manifest)
    if action != "unchanged":
        kind = manifest["kind"]
        record_event(
            kube,
            owner,
            NORMAL,
            f"{kind}{action.capitalize()}",
            f"{kind} {manifest['metadata']['name']} {action}",
        )


def _migrating(live: dict[str, Any] | None, job_name: str, image: str) -> Outcome:
    available, facts = _availability(live)
    message = f"migration Job {job_name} is running for {image}"
    return Outcome(
        phase="Migrating",
        message=message,
        conditions={
            "MigrationsApplied": Condition(False, "Migrating", message),
            "Available": available,
            "Ready": Condition(False, "Migrating", message),
            "Degraded": _AS_EXPECTED,
        },
        facts=facts,
    )


def _migration_failed(live: dict[str, Any] | None, job_name: str, why: str) -> Outcome:
    kept = "the running Deployment is left untouched" if live else "nothing was deployed"
    message = (
        f"migration Job {job_name} failed ({why}); {kept}. Fix the cause, then change "
        f"spec.image or delete the Job to retry"
    )
    return _refused(live, "MigrationFailed", message)


def _deployed(
    live: dict[str, Any] | None,
    spec: dict[str, Any],
    facts: dict[str, Any],
    old_status: dict[str, Any],
) -> Outcome:
    available, counts = _availability(live)
    _, ready, _, rolled_out = deployment_readiness(live)
    revision = facts.get("schemaRevision") or old_status.get("schemaRevision", "head")
    applied = Condition(True, "Succeeded", f"schema {revision} for {spec['image']}")
    if rolled_out:
        phase, message = "Ready", f"{ready} replicas of {spec['image']} ready"
        ready_cond = Condition(True, "AllReplicasReady", message)
    else:
        phase, message = "Deploying", f"rolling out {spec['image']}: {available.message}"
        ready_cond = Condition(False, "RollingOut", message)
    return Outcome(
        phase=phase,
        message=message,
        conditions={
            "MigrationsApplied": applied,
            "Available": available,
            "Ready": ready_cond,
            "Degraded": _AS_EXPECTED,
        },
        facts={**facts, **counts},
    )
