"""Reading a migration Job's outcome: pure helpers plus the schema revision lookup."""

from __future__ import annotations

from typing import Any, Literal

from .kube import Kube

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
            message = cond.get("message") or "the migration pod failed"
            return "failed", f"{reason}: {message}"
    if int(status.get("succeeded") or 0) > 0:
        return "succeeded", ""
    return "running", ""


def schema_revision(kube: Kube, namespace: str, job_name: str) -> str:
    """The Alembic revision the Job reported in its termination message, else ``head``.

    ``somamemory migrate`` upgrades to head; if it writes the revision id to
    ``/dev/termination-log`` the exact id shows up here.
    """
    for pod in kube.list("Pod", namespace, {"job-name": job_name}):
        for container in (pod.get("status") or {}).get("containerStatuses") or []:
            terminated = (container.get("state") or {}).get("terminated") or {}
            message = (terminated.get("message") or "").strip()
            if terminated.get("exitCode") == 0 and message:
                return message.splitlines()[-1].strip()[:64]
    return UNKNOWN_REVISION
