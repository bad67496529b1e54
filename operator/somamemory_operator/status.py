"""Status in the Kubernetes conditions convention: pure functions, no API calls."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

CONDITION_TYPES = ("MigrationsApplied", "Available", "Ready", "Degraded")


def now() -> str:
    """The current time as Kubernetes writes it (RFC 3339, seconds, UTC)."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Condition:
    """One condition as the reconciler decided it."""

    status: bool
    reason: str
    message: str


@dataclass
class Outcome:
    """What a reconcile found: the phase, the four conditions and the facts behind them."""

    phase: str
    message: str
    conditions: dict[str, Condition]
    facts: dict[str, Any] = field(default_factory=dict)


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
    status = {
        key: value
        for key, value in old.items()
        if key in ("migratedImage", "migrationJob", "schemaRevision")
    }
    status |= outcome.facts
    status |= {
        "phase": outcome.phase,
        "message": outcome.message,
        "observedGeneration": generation,
        "conditions": merge_conditions(
            old.get("conditions", []), outcome.conditions, generation, now()
        ),
    }
    desired = status.get("replicas", 0)
    status["ready"] = f"{status.get('readyReplicas', 0)}/{desired}"
    return status


def status_changed(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """True when writing ``new`` would change anything but timestamps."""

    def strip(status: dict[str, Any]) -> dict[str, Any]:
        conds = [
            {k: v for k, v in c.items() if k != "lastTransitionTime"}
            for c in status.get("conditions", [])
        ]
        return {**status, "conditions": conds}

    return strip(old) != strip(new)


def deployment_readiness(deployment: dict[str, Any] | None) -> tuple[int, int, bool, bool]:
    """(desired, ready, available, rolled_out) read from a Deployment's status."""
    if deployment is None:
        return 0, 0, False, False
    spec, status = deployment.get("spec", {}), deployment.get("status") or {}
    desired = int(spec.get("replicas", 1))
    ready = int(status.get("readyReplicas") or 0)
    updated = int(status.get("updatedReplicas") or 0)
    conds = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    available = conds.get("Available") == "True" or (desired == 0 or ready > 0)
    generation = deployment.get("metadata", {}).get("generation")
    observed = status.get("observedGeneration")
    current = generation is None or observed is None or observed >= generation
    rolled_out = current and ready >= desired and updated >= desired
    return desired, ready, available, rolled_out
