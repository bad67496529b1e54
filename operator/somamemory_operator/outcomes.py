"""The outcomes a reconcile can end in, as conditions a person (and kstatus) can act on.

Pure builders: each takes what the reconcile found and returns the phase, the message and every
condition. ``Stalled`` outcomes leave whatever runs alone and say what to fix; in-progress ones
set ``Reconciling``; only a complete rollout is ``Ready``.
"""

from __future__ import annotations

from typing import Any

from .pods import PodProblem, summary
from .status import AS_EXPECTED, Condition, Outcome, Rollout, condition_from

STOPPED = "progress stopped: see the Stalled condition"
PAUSED_MESSAGE = "reconciling is paused by the annotation soma.dev/paused; remove it to resume"


def availability(live: Rollout) -> Condition:
    """The ``Available`` condition: is anything serving?"""
    if not live.exists:
        return Condition(False, "NotDeployed", "no Deployment yet")
    counted = f"{live.ready}/{live.desired} replicas ready"
    if live.available:
        return Condition(True, "MinimumReplicasAvailable", counted)
    return Condition(False, "NoReplicasAvailable", counted)


def rollout_facts(live: Rollout, selector: str) -> dict[str, Any]:
    """The counts behind ``kubectl get smem`` and the scale subresource."""
    facts: dict[str, Any] = {
        "replicas": live.replicas,
        "readyReplicas": live.ready,
        "desiredReplicas": live.desired,
        "selector": selector,
    }
    if live.image:
        facts["image"] = live.image
    return facts


def stalled(
    live: Rollout,
    reason: str,
    message: str,
    migrations: Condition | None = None,
    facts: dict[str, Any] | None = None,
) -> Outcome:
    """Progress has stopped until a person acts. A running Deployment is kept (Degraded);
    with nothing running the instance is Failed."""
    problem = Condition(True, reason, message)
    return Outcome(
        phase="Degraded" if live.exists else "Failed",
        message=message,
        conditions={
            "Ready": Condition(False, reason, message),
            "Reconciling": Condition(False, "Stalled", STOPPED),
            "Stalled": problem,
            "MigrationsApplied": migrations or Condition(False, reason, message),
            "Available": availability(live),
            "Degraded": problem,
        },
        facts=facts or {},
    )


def in_progress(
    live: Rollout,
    phase: str,
    reason: str,
    message: str,
    migrations: Condition,
    facts: dict[str, Any] | None = None,
) -> Outcome:
    """Work in flight (a schema check, a migration, a rollout): Reconciling, not yet Ready."""
    return Outcome(
        phase=phase,
        message=message,
        conditions={
            "Ready": Condition(False, reason, message),
            "Reconciling": Condition(True, reason, message),
            "Stalled": AS_EXPECTED,
            "MigrationsApplied": migrations,
            "Available": availability(live),
            "Degraded": AS_EXPECTED,
        },
        facts=facts or {},
    )


def waiting_on_pods(
    live: Rollout,
    problems: list[PodProblem],
    what: str,
    reason: str,
    message: str,
    migrations: Condition,
    phase: str = "Migrating",
) -> Outcome:
    """A Job or rollout in flight: stalled if its pods cannot start, else in progress."""
    stuck = [p for p in problems if p.stalled]
    if stuck:
        applied = migrations if migrations.status else None  # else: not applied, for this reason
        return stalled(live, stuck[0].reason, f"{what}: {summary(stuck)}", applied)
    if problems:
        message = f"{message}; {summary(problems)}"
    return in_progress(live, phase, reason, message, migrations)


def deployed(
    live: Rollout, image: str, revision: str, problems: list[PodProblem], facts: dict[str, Any]
) -> Outcome:
    """After the migration: Ready once the rollout is complete, else why not."""
    migrations = Condition(True, "Succeeded", f"schema {revision} for {image}")
    if live.stuck:
        detail = f"; {summary(problems)}" if problems else ""
        message = f"the rollout of {image} stopped: {live.stuck}{detail}"
        return stalled(live, "ProgressDeadlineExceeded", message, migrations, facts)
    if live.complete:
        message = f"{live.ready} replicas of {image} ready"
        return Outcome(
            phase="Ready",
            message=message,
            conditions={
                "Ready": Condition(True, "AllReplicasReady", message),
                "Reconciling": Condition(False, "Reconciled", message),
                "Stalled": AS_EXPECTED,
                "MigrationsApplied": migrations,
                "Available": availability(live),
                "Degraded": AS_EXPECTED,
            },
            facts=facts,
        )
    outcome = waiting_on_pods(
        live,
        problems,
        f"pods of {image} cannot run",
        "RollingOut",
        f"rolling out {image}: {live.ready}/{live.desired} replicas ready",
        migrations,
        phase="Deploying",
    )
    outcome.facts = facts
    return outcome


def paused(old_status: dict[str, Any]) -> Outcome:
    """Nothing is reconciled: the conditions stay as they were, but for ``Reconciling``."""
    old = {c.get("type"): c for c in old_status.get("conditions") or []}
    conditions = {
        kind: condition_from(old[kind]) if kind in old else Condition(False, "Paused", "")
        for kind in ("Ready", "Stalled", "MigrationsApplied", "Available", "Degraded")
    }
    conditions["Reconciling"] = Condition(False, "Paused", PAUSED_MESSAGE)
    return Outcome(phase="Paused", message=PAUSED_MESSAGE, conditions=conditions)
