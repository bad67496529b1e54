"""Names shared by the CRD, the manifests and the handlers."""

from __future__ import annotations

import importlib.metadata

GROUP = "soma.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "SomaMemory"
PLURAL = "somamemories"
SINGULAR = "somamemory"
SHORT_NAME = "smem"
# The backup and rebuild kinds (see tasks.py and schedule.py): kind -> (plural, short name)
BACKUP = "SomaMemoryBackup"
SCHEDULED_BACKUP = "SomaMemoryScheduledBackup"
RESTORE = "SomaMemoryRestore"
REINDEX = "SomaMemoryReindex"
TASK_KINDS: dict[str, tuple[str, str]] = {
    BACKUP: ("somamemorybackups", "smembackup"),
    SCHEDULED_BACKUP: ("somamemoryscheduledbackups", "smemschedule"),
    RESTORE: ("somamemoryrestores", "smemrestore"),
    REINDEX: ("somamemoryreindexes", "smemreindex"),
}
BACKUP_DIR = "/backups"  # where a backup's claim is mounted in the Jobs

MANAGER = "somamemory-operator"
APP_NAME = "somamemory"
HTTP_PORT = 10101
RUN_AS_USER = 10001
DATA_DIR = "/var/lib/somamemory"

# Label and annotation keys the operator writes on its children.
LABEL_NAME = "app.kubernetes.io/name"
LABEL_INSTANCE = "app.kubernetes.io/instance"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_VERSION = "app.kubernetes.io/version"
ANNOTATION_CONFIG_HASH = f"{GROUP}/config-hash"
ANNOTATION_IMAGE = f"{GROUP}/image"
# What the operator last applied to a child: fields it set before and no longer renders are
# removed (a three-way merge, as ``kubectl apply`` does), fields others set are left alone.
ANNOTATION_LAST_APPLIED = f"{GROUP}/last-applied"
# On each child: the operator version that last applied it (metadata only, never the pod
# template: a new operator alone restarts no pod).
ANNOTATION_OPERATOR_VERSION = f"{GROUP}/operator-version"
# On a SomaMemory: "true" stops reconciling it (children and status are left as they are).
ANNOTATION_PAUSED = f"{GROUP}/paused"
# On the backups a SomaMemoryScheduledBackup makes: its name (retention counts by it)
LABEL_SCHEDULE = f"{GROUP}/scheduled-backup"


def _version() -> str:
    try:
        return importlib.metadata.version("somamemory")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree
        return "0.0.0"


OPERATOR_VERSION = _version()
