"""Status in the Kubernetes conditions convention, kstatus included: pure functions, no API calls.

kstatus (read by Argo CD and Flux): ``Reconciling`` is True while work is in flight, ``Stalled``
is True when progress has stopped until a person acts; both False once the instance is current.
``Ready``, ``Available``, ``MigrationsApplied`` and ``Degraded`` say the rest.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

CONDITION_TYPES = ("Ready", "Reconciling", "Stalled", "MigrationsApplied", "Available", "Degraded")
KEPT_FACTS = (
    "migratedImage",
    "migrationJob",
    "schemaRevision",
    "migrationSeconds",
    "deploymentGeneration",
    "lastBackupTime",
    "lastBackup",
)
# Kept, but written by the backups (tasks.py), never by the instance's reconcile: its status
# write leaves them out, so a merge patch cannot put back an older value read before a backup.
FOREIGN_FACTS = ("lastBackupTime", "lastBackup")


def now() -> str:
    """The current time as Kubernetes writes it (RFC 3339, seconds, UTC)."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Condition:
    """One condition as the reconciler decided it."""

    status: bool
    reason: str
    message: str


AS_EXPECTED = Condition(False, "AsExpected", "")


@dataclass
class Outcome:
    """What a reconcile found: the phase, the conditions and the facts behind them."""

    phase: str
    message: str
    conditions: dict[str, Condition]
    facts: dict[str, Any] = field(default_factory=dict)


def condition_from(old: dict[str, Any]) -> Condition:
    """A written condition read back (to keep it as it is)."""
    return Condition(old.get("status") == "True", old.get("reason", ""), old.get("message", ""))


def merge_conditions(
    old: list[dict[str, Any]], new: dict[str, Condition], generation: int, at: str
) -> list[dict[str, Any]]:
    """The new condition list; ``lastTransitionTime`` moves only when a status flips."""
    previous = {c.get("type"): c for c in old or []}
    out = []
    for kind in CONDITION_TYPES:
        cond = new[kind]
        status = "True" if cond.status else "False"
        before = previous.get(kind, {})
        moved = before.get("status") != status
        out.append(
            {
                "type": kind,
                "status": status,
                "reason": cond.reason,
                "message": cond.message,
                "lastTransitionTime": at if moved else before.get("lastTransitionTime", at),
                "observedGeneration": generation,
            }
        )
    return out


def render_status(old: dict[str, Any], outcome: Outcome, generation: int) -> dict[str, Any]:
    """The whole ``status`` block to write for ``outcome``."""
    status = {key: value for key, value in old.items() if key in KEPT_FACTS}
    status |= outcome.facts
    status |= {
        "phase": outcome.phase,
        "message": outcome.message,
        "observedGeneration": generation,
        "conditions": merge_conditions(
            old.get("conditions", []), outcome.conditions, generation, now()
        ),
    }
    status["ready"] = f"{status.get('readyReplicas', 0)}/{status.get('desiredReplicas', 0)}"
    return status


def own_part(status: dict[str, Any]) -> dict[str, Any]:
    """``status`` less the facts others write (:data:`FOREIGN_FACTS`)."""
    return {key: value for key, value in status.items() if key not in FOREIGN_FACTS}


def status_changed(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """True when writing ``new`` would change anything but timestamps."""

    def strip(status: dict[str, Any]) -> dict[str, Any]:
        conds = [
            {k: v for k, v in c.items() if k != "lastTransitionTime"}
            for c in status.get("conditions", [])
        ]
        return {**status, "conditions": conds}

    return strip(old) != strip(new)


@dataclass(frozen=True)
class Rollout:
    """A Deployment's state, read the way the SomaMemory's conditions need it."""

    exists: bool = False
    desired: int = 0
    replicas: int = 0
    ready: int = 0
    available: bool = False
    complete: bool = False
    stuck: str = ""  # the Deployment's own message once it is past its progress deadline
    image: str = ""


def rollout(
    deployment: dict[str, Any] | None, floor: int, applied_generation: int | None = None
) -> Rollout:
    """Read ``deployment``; ``floor`` is the replica count promised (spec.replicas, or the HPA's
    minReplicas), ``applied_generation`` the Deployment generation of the operator's last write.

    Complete (Ready) means: the controller has seen the operator's last change, no pod of an
    older template is left, and at least min(floor, desired) pods of the current one are ready.
    An HPA scale-up therefore does not flip Ready: the new pods start from the current template,
    and the ones already ready still meet the floor. Generations bumped by the HPA alone (a
    scale) do not count as a change the controller must have seen.
    """
    if deployment is None:
        return Rollout()
    spec, status = deployment.get("spec", {}), deployment.get("status") or {}
    desired = int(spec.get("replicas", 1))
    replicas = int(status.get("replicas") or 0)
    ready = int(status.get("readyReplicas") or 0)
    updated = int(status.get("updatedReplicas") or 0)
    conds = {c.get("type"): c for c in status.get("conditions") or []}
    available = (conds.get("Available") or {}).get("status") == "True" or desired == 0 or ready > 0
    observed = status.get("observedGeneration")
    seen = observed is None or applied_generation is None or observed >= applied_generation
    need = min(floor, desired)
    complete = seen and replicas - updated <= 0 and updated >= need and ready >= need
    progressing = conds.get("Progressing") or {}
    stuck = ""
    if progressing.get("reason") == "ProgressDeadlineExceeded":
        stuck = progressing.get("message") or "the rollout exceeded its progress deadline"
    containers = deployment.get("spec", {}).get("template", {}).get("spec", {}).get("containers")
    image = (containers or [{}])[0].get("image", "")
    return Rollout(True, desired, replicas, ready, available, complete, stuck, image)
