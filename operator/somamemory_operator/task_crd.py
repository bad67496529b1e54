"""The backup and rebuild CRDs, built here as data like the SomaMemory's (:mod:`.crd`).

Four kinds, each a request a person (or GitOps) makes and whose status says how it went, in the
pattern of CloudNativePG's Backup and ScheduledBackup:

- ``SomaMemoryBackup``: one ``somamemory export`` of an instance into a PersistentVolumeClaim;
- ``SomaMemoryScheduledBackup``: makes backups on a cron schedule and keeps the newest ones;
- ``SomaMemoryRestore``: one ``somamemory import`` of a backup's file into an instance;
- ``SomaMemoryReindex``: one ``somamemory reindex``, rebuilding the vector store from PostgreSQL.

A request's spec cannot change once made (CEL ``self == oldSelf``): to run again, make another.
"""

from __future__ import annotations

from typing import Any

from . import cron
from .constants import (
    BACKUP,
    GROUP,
    REINDEX,
    RESTORE,
    SCHEDULED_BACKUP,
    TASK_KINDS,
    VERSION,
)
from .spec_schema import Schema, backup_claim_schema, obj

TASK_PHASES = ["Pending", "Running", "Succeeded", "Failed"]
TASK_CONDITIONS = ("Ready", "Reconciling", "Stalled")
_DNS_LABEL = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
_DNS_NAME = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
_NAMESPACE = r"^[A-Za-z0-9_.\-]{1,64}$"
_IMMUTABLE = [
    {
        "rule": "self == oldSelf",
        "message": "a request's spec cannot change once made: create another one",
    }
]


def _str(max_length: int = 253, **extra: Any) -> Schema:
    return {"type": "string", "maxLength": max_length, **extra}


def _int(default: int, minimum: int, maximum: int, description: str) -> Schema:
    return {
        "type": "integer",
        "default": default,
        "minimum": minimum,
        "maximum": maximum,
        "description": description,
    }


def _instance() -> Schema:
    return _str(52, minLength=1, pattern=_DNS_LABEL, description="The SomaMemory (same namespace).")


def _job_limits() -> dict[str, Schema]:
    return {
        "backoffLimit": _int(1, 0, 10, "Retries of the Job's pod."),
        "activeDeadlineSeconds": _int(21600, 60, 604800, "The Job's time limit."),
    }


def backup_spec(immutable: bool = True) -> Schema:
    """A backup's spec (``immutable=False``: the template a schedule's backups are made from)."""
    return obj(
        {
            "instance": _instance(),
            "memoryNamespace": _str(64, pattern=_NAMESPACE)
            | {"description": "Export only this memory namespace (default: all of them)."},
            "claim": backup_claim_schema(),
            **_job_limits(),
        },
        required=["instance"],
        validations=_IMMUTABLE if immutable else None,
    )


def scheduled_backup_spec() -> Schema:
    return obj(
        {
            "schedule": _str(128, pattern=cron.PATTERN)
            | {
                "description": "Cron schedule in UTC (minute hour day-of-month month "
                "day-of-week, or @daily and the like)."
            },
            "keep": _int(
                7,
                1,
                1000,
                "Successful backups kept (with their files); older "
                "backups of this schedule are deleted.",
            ),
            "immediate": {
                "type": "boolean",
                "default": False,
                "description": "Take the first backup at once, not at the first scheduled time.",
            },
            "suspend": {"type": "boolean", "default": False, "description": "Take no backups."},
            "backup": backup_spec(immutable=False),
        },
        required=["schedule", "backup"],
    )


def restore_spec() -> Schema:
    return obj(
        {
            "instance": _instance(),
            "backup": _str(253, minLength=1, pattern=_DNS_NAME)
            | {"description": "A succeeded SomaMemoryBackup (same namespace) to import."},
            "file": obj(
                {
                    "claimName": _str(253, minLength=1, pattern=_DNS_NAME),
                    "path": _str(1024, minLength=1, pattern=r"^[^/].*$")
                    | {"description": "The export file's path inside the claim."},
                },
                required=["claimName", "path"],
                description="An export file on a claim, e.g. of a backup whose object is gone.",
                validations=[
                    {"rule": "!self.path.contains('..')", "message": "file.path may not hold .."}
                ],
            ),
            **_job_limits(),
        },
        required=["instance"],
        validations=[
            *_IMMUTABLE,
            {
                "rule": "has(self.backup) != has(self.file)",
                "message": "name a backup or a file, not both or neither",
            },
        ],
    )


def reindex_spec() -> Schema:
    return obj(
        {
            "instance": _instance(),
            "memoryNamespace": _str(64, pattern=_NAMESPACE)
            | {"description": "Reindex only this memory namespace (default: all of them)."},
            **_job_limits(),
        },
        required=["instance"],
        validations=_IMMUTABLE,
    )


SPECS = {
    BACKUP: backup_spec,
    SCHEDULED_BACKUP: scheduled_backup_spec,
    RESTORE: restore_spec,
    REINDEX: reindex_spec,
}


def _conditions() -> Schema:
    condition = obj(
        {
            "type": {"type": "string"},
            "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
            "reason": {"type": "string"},
            "message": {"type": "string"},
            "lastTransitionTime": {"type": "string", "format": "date-time"},
            "observedGeneration": {"type": "integer", "minimum": 0},
        },
        required=["type", "status"],
    )
    return {
        "type": "array",
        "items": condition,
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
    }


def task_status() -> Schema:
    """What a backup, restore or reindex reports."""
    time = {"type": "string", "format": "date-time"}
    return obj(
        {
            "phase": {"type": "string", "enum": TASK_PHASES},
            "reason": {"type": "string"},
            "message": {"type": "string"},
            "job": {"type": "string", "description": "the Job that runs it"},
            "image": {"type": "string", "description": "the image the Job runs"},
            "claimName": {"type": "string"},
            "file": {"type": "string", "description": "the export file's path in the claim"},
            "bytes": {"type": "integer", "description": "size of the export file"},
            "memories": {"type": "integer", "description": "memories exported or imported"},
            "changed": {"type": "integer", "description": "memories an import added or updated"},
            "vectorsOwed": {"type": "integer", "description": "vectors a reindex left owed"},
            "durationSeconds": {"type": "integer"},
            "startedAt": time,
            "completedAt": time,
            "observedGeneration": {"type": "integer"},
            "conditions": _conditions(),
        }
    )


def schedule_status() -> Schema:
    time = {"type": "string", "format": "date-time"}
    return obj(
        {
            "lastScheduleTime": time,
            "nextScheduleTime": time,
            "lastBackup": {"type": "string"},
            "message": {"type": "string"},
            "observedGeneration": {"type": "integer"},
        }
    )


_AGE = ("Age", "date", ".metadata.creationTimestamp")
COLUMNS: dict[str, list[tuple[str, str, str]]] = {
    BACKUP: [
        ("Instance", "string", ".spec.instance"),
        ("Phase", "string", ".status.phase"),
        ("Memories", "integer", ".status.memories"),
        ("Bytes", "integer", ".status.bytes"),
        ("Seconds", "integer", ".status.durationSeconds"),
        _AGE,
    ],
    SCHEDULED_BACKUP: [
        ("Schedule", "string", ".spec.schedule"),
        ("Keep", "integer", ".spec.keep"),
        ("Last", "date", ".status.lastScheduleTime"),
        ("Next", "string", ".status.nextScheduleTime"),
        _AGE,
    ],
    RESTORE: [
        ("Instance", "string", ".spec.instance"),
        ("Backup", "string", ".spec.backup"),
        ("Phase", "string", ".status.phase"),
        ("Memories", "integer", ".status.memories"),
        _AGE,
    ],
    REINDEX: [
        ("Instance", "string", ".spec.instance"),
        ("Phase", "string", ".status.phase"),
        ("Memories", "integer", ".status.memories"),
        _AGE,
    ],
}


# a schedule's name is a label value on its backups
_ROOT = {
    SCHEDULED_BACKUP: [
        {
            "rule": "size(self.metadata.name) <= 63",
            "message": "metadata.name: at most 63 characters (it labels the schedule's backups)",
        }
    ]
}


def task_crd(kind: str) -> dict[str, Any]:
    """The CustomResourceDefinition of one of the backup and rebuild kinds."""
    plural, short = TASK_KINDS[kind]
    status = schedule_status() if kind == SCHEDULED_BACKUP else task_status()
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": [short],
                "categories": ["soma"],  # kubectl get soma: every backup kind
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {"name": n, "type": t, "jsonPath": p} for n, t, p in COLUMNS[kind]
                    ],
                    "schema": {
                        "openAPIV3Schema": obj(
                            {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": SPECS[kind](),
                                "status": status,
                            },
                            required=["spec"],
                            validations=_ROOT.get(kind),
                        )
                    },
                }
            ],
        },
    }


def task_crds() -> list[dict[str, Any]]:
    """Every backup and rebuild CRD, in a stable order."""
    return [task_crd(kind) for kind in TASK_KINDS]
