"""Migrations and the data Jobs (backup, restore, reindex) of one instance never overlap.

Whichever starts first runs; the other waits until it has finished. Each side checks for the
other's running Job and creates its own while holding the instance's lock, so the instance's
reconcile and a backup's, running in different threads of the one operator that works (kopf's
peering lets only one), cannot both see "nothing running" and both start.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any

from .constants import LABEL_COMPONENT, LABEL_INSTANCE, LABEL_MANAGED_BY, MANAGER
from .kube import Kube
from .migration import job_state

DATA_COMPONENTS = ("backup", "restore", "reindex")
MIGRATION_COMPONENTS = ("migration",)

_LOCKS: defaultdict[tuple[str, str], threading.Lock] = defaultdict(threading.Lock)
_GUARD = threading.Lock()


def lock(namespace: str, instance: str) -> threading.Lock:
    """The lock of one instance (held around "check the other side, then start")."""
    with _GUARD:
        return _LOCKS[(namespace, instance)]


def running_jobs(
    kube: Kube, namespace: str, instance: str, components: tuple[str, ...]
) -> list[dict[str, Any]]:
    """The instance's unfinished Jobs of these components, oldest name first."""
    jobs = kube.list("Job", namespace, {LABEL_INSTANCE: instance, LABEL_MANAGED_BY: MANAGER})
    return sorted(
        (
            job
            for job in jobs
            if (job["metadata"].get("labels") or {}).get(LABEL_COMPONENT) in components
            and not job["metadata"].get("deletionTimestamp")
            and job_state(job)[0] == "running"
        ),
        key=lambda job: str(job["metadata"]["name"]),
    )


def describe(job: dict[str, Any]) -> str:
    """``backup Job memory-nightly-backup-1a2b3`` and the like."""
    component = (job["metadata"].get("labels") or {}).get(LABEL_COMPONENT, "")
    return f"{component} Job {job['metadata']['name']}"
