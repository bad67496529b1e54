"""One level-based reconcile of a SomaMemory: read, converge the children, write the status.

Order: ConfigMap (and milvus-lite's claim without a Milvus server) -> the migration gate
(:mod:`.gate`) -> only once the image's migration succeeded: Deployment, Service, HPA,
PodDisruptionBudget, and the monitoring objects when the Prometheus Operator's CRDs are served
(:mod:`.monitoring`). Every step is idempotent; running it twice changes nothing. The
annotation ``soma.dev/paused: "true"`` stops all of it for one instance.
"""

from __future__ import annotations

import logging
from typing import Any

from . import manifests, metrics, monitoring
from .children import apply, record_event, remove
from .constants import ANNOTATION_PAUSED, OPERATOR_VERSION
from .gate import migrate_first
from .kube import Kube
from .outcomes import deployed, paused, rollout_facts, stalled
from .pods import diagnose, matching
from .spec import SpecError, check_name, normalize
from .status import Outcome, own_part, render_status, rollout, status_changed

logger = logging.getLogger(__name__)


def is_paused(obj: dict[str, Any]) -> bool:
    """True when the SomaMemory carries ``soma.dev/paused: "true"``."""
    annotations = obj["metadata"].get("annotations") or {}
    return str(annotations.get(ANNOTATION_PAUSED, "")).lower() == "true"


def reconcile(
    kube: Kube, namespace: str, name: str, version: str = OPERATOR_VERSION
) -> Outcome | None:
    """Bring one SomaMemory's children in line with its spec; None if it is gone or going.

    ``version`` (the operator's) is stamped on the children's metadata, never on a pod template:
    an operator upgrade alone restarts no pod."""
    obj = kube.get("SomaMemory", namespace, name)
    if obj is None or obj["metadata"].get("deletionTimestamp"):
        metrics.INSTANCES.forget(namespace, name)
        return None
    uid = obj["metadata"].get("uid", "")
    meta = {"name": name, "namespace": namespace, "uid": uid, "version": version}
    old_status: dict[str, Any] = obj.get("status") or {}
    generation = int(obj["metadata"].get("generation") or 0)
    if is_paused(obj):
        outcome = paused(old_status)
        generation = int(old_status.get("observedGeneration") or 0)  # this one was not acted on
    else:
        try:
            check_name(name)
            spec = normalize(obj.get("spec") or {})
        except SpecError as exc:
            outcome = _invalid(kube, meta, str(exc))
        else:
            outcome = _converge(kube, obj, meta, spec, old_status)
    new_status = render_status(old_status, outcome, generation)
    metrics.INSTANCES.observe(namespace, name, old_status | new_status)
    if status_changed(old_status, new_status):
        kube.patch(
            "SomaMemory", namespace, name, {"status": own_part(new_status)}, subresource="status"
        )
        if (old_status.get("phase"), old_status.get("message")) != (outcome.phase, outcome.message):
            stuck = outcome.conditions["Stalled"].status
            record_event(
                kube, obj, "Warning" if stuck else "Normal", outcome.phase, outcome.message
            )
            logger.info(
                "SomaMemory %s/%s is %s: %s", namespace, name, outcome.phase, outcome.message
            )
    return outcome


def _floor(spec: dict[str, Any]) -> int:
    """The replicas promised: the HPA's minimum with autoscaling, else spec.replicas."""
    scaling = spec["autoscaling"]
    return int(scaling["minReplicas"] if scaling["enabled"] else spec["replicas"])


def _invalid(kube: Kube, meta: dict[str, Any], problem: str) -> Outcome:
    """Refuse the spec: apply nothing, keep whatever already runs, say exactly why."""
    live = rollout(kube.get("Deployment", meta["namespace"], meta["name"]), 1)
    facts = rollout_facts(live, manifests.selector_string(meta))
    return stalled(live, "InvalidSpec", f"invalid spec, nothing applied: {problem}", facts=facts)


def _server_pods(kube: Kube, meta: dict[str, Any]) -> list[dict[str, Any]]:
    selector = manifests.selector(meta)
    return matching(kube.list("Pod", meta["namespace"], selector), selector)


def _converge(
    kube: Kube,
    owner: dict[str, Any],
    meta: dict[str, Any],
    spec: dict[str, Any],
    old_status: dict[str, Any],
) -> Outcome:
    ns, name = meta["namespace"], meta["name"]
    cm = manifests.configmap(meta, spec)
    apply(kube, owner, cm)
    if (claim := manifests.data_claim(meta, spec)) is not None:
        apply(kube, owner, claim, create_only=True)
    generation = old_status.get("deploymentGeneration")
    live = rollout(kube.get("Deployment", ns, name), _floor(spec), generation)
    facts: dict[str, Any] = {}
    if old_status.get("migrationJob") != manifests.migration_job_name(meta, spec):
        gated = migrate_first(kube, owner, meta, spec, old_status, live)
        if isinstance(gated, Outcome):
            gated.facts = rollout_facts(live, manifests.selector_string(meta)) | gated.facts
            return gated
        facts = gated
    action, written = apply(
        kube, owner, manifests.deployment(meta, spec, manifests.config_hash(cm))
    )
    if action != "unchanged" and written and "generation" in written.get("metadata", {}):
        generation = facts["deploymentGeneration"] = int(written["metadata"]["generation"])
    apply(kube, owner, manifests.service(meta, spec))
    for kind, optional in (
        ("HorizontalPodAutoscaler", manifests.autoscaler(meta, spec)),
        ("PodDisruptionBudget", manifests.disruption_budget(meta, spec)),
    ):
        if optional is None:
            remove(kube, kind, ns, name)
        else:
            apply(kube, owner, optional)
    monitoring.converge(kube, owner, meta, spec)
    live = rollout(kube.get("Deployment", ns, name), _floor(spec), generation)
    revision = facts.get("schemaRevision") or old_status.get("schemaRevision", "head")
    facts |= rollout_facts(live, manifests.selector_string(meta))
    problems = diagnose(_server_pods(kube, meta), spec)
    return deployed(live, spec["image"], revision, problems, facts)
