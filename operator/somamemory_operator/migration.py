"""Reading the Jobs' outcomes: the migration's state and revision, an image's known revisions."""

from __future__ import annotations

import datetime
from typing import Any, Literal

from .kube import Kube
from .pods import matching

JobState = Literal["running", "succeeded", "failed"]
UNKNOWN_REVISION = "head"


def job_state(job: dict[str, Any]) -> tuple[JobState, str]:
    """The Job's state and, for a failure, the reason and message Kubernetes gave."""
    status = job.get("status") or {}
    for cond in status.get("conditions") or []:
        if cond.get("status") != "True":
            continue
        if cond.get("type") in ("Complete", "SuccessCriteriaMet"):
            return "succeeded", ""
        if cond.get("type") in ("Failed", "FailureTarget"):
            reason = cond.get("reason") or "Failed"
            message = cond.get("message") or "the pod failed"
            return "failed", f"{reason}: {message}"
    if int(status.get("succeeded") or 0) > 0:
        return "succeeded", ""
    return "running", ""


def job_seconds(job: dict[str, Any]) -> int | None:
    """How long a finished Job ran (its start to completion time), if it says."""
    status = job.get("status") or {}
    try:
        start = datetime.datetime.fromisoformat(str(status["startTime"]).replace("Z", "+00:00"))
        end = datetime.datetime.fromisoformat(str(status["completionTime"]).replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return None
    return max(0, round((end - start).total_seconds()))


def job_pods(kube: Kube, namespace: str, job_name: str) -> list[dict[str, Any]]:
    """The Job's pods (the label is checked here too, whatever the server made of the query)."""
    pods = kube.list("Pod", namespace, {"job-name": job_name})
    return matching(pods, {"job-name": job_name})


def _terminated(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for pod in pods:
        for container in (pod.get("status") or {}).get("containerStatuses") or []:
            terminated = (container.get("state") or {}).get("terminated")
            if terminated:
                out.append(terminated)
    return out


def termination_lines(pods: list[dict[str, Any]]) -> list[str] | None:
    """The termination message of the Job's successful pod, line by line; None if there is none."""
    for terminated in _terminated(pods):
        message = (terminated.get("message") or "").strip()
        if terminated.get("exitCode") == 0 and message:
            return [line.strip() for line in message.splitlines() if line.strip()]
    return None


def failure_tail(pods: list[dict[str, Any]]) -> str:
    """The last line a failed pod left (its termination message or log tail), or ""."""
    for terminated in _terminated(pods):
        lines = (terminated.get("message") or "").strip().splitlines()
        if terminated.get("exitCode") not in (0, None) and lines:
            return lines[-1].strip()[:300]
    return ""


def schema_revision(pods: list[dict[str, Any]]) -> str:
    """The Alembic revision the migration reported (``somamemory migrate`` writes it to
    ``/dev/termination-log``), else ``head``."""
    lines = termination_lines(pods)
    return lines[-1][:64] if lines else UNKNOWN_REVISION
