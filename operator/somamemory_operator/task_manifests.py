"""The Jobs of backups, restores and reindexes, and a backup's claim: pure functions.

Each Job runs the instance's image with the instance's settings (its ConfigMap and the same
Secret references as the server pods), placed and pulled like them. The command runs under a
small ``sh`` script that leaves a one-line summary as the pod's termination message, where the
operator reads it back:

- a backup writes ``<name>.jsonl.partial``, renames it to ``<name>.jsonl`` only when the export
  finished, writes ``{"file", "bytes", "memories"}`` next to it (``<name>.jsonl.json``) and as
  its termination message, and (for a schedule) deletes the schedule's files past ``keep``;
- a restore or a reindex leaves the command's last line (``imported N memories (M new or
  newer)``, ``reindexed N memories``, or the error) as its termination message.
"""

from __future__ import annotations

import hashlib
from typing import Any

from .constants import ANNOTATION_IMAGE, ANNOTATION_OPERATOR_VERSION, API_VERSION, BACKUP_DIR
from .manifests import labels
from .podspec import container, embedded_milvus, pod_metadata, pod_spec

Manifest = dict[str, Any]

BACKUP_SCRIPT = r"""set -eu
file="$1" keep="$2" prefix="$3"
shift 3
partial="$file.partial"
trap 'rm -f "$partial"' EXIT
somamemory export "$@" "$partial"
memories=$(( $(wc -l < "$partial") - 1 ))
bytes=$(wc -c < "$partial")
mv "$partial" "$file"
summary=$(printf '{"file": "%s", "bytes": %d, "memories": %d}' "${file##*/}" "$bytes" "$memories")
printf '%s\n' "$summary" > "$file.json"
printf '%s\n' "$summary" > "${SOMA_TERMINATION_LOG:-/dev/termination-log}"
if [ "$keep" -gt 0 ]; then
  dir="${file%/*}"
  ls -1 "$dir" | grep -E "^$prefix[0-9]{12}\.jsonl$" | sort -r | tail -n "+$((keep + 1))" |
    while read -r old; do rm -f "$dir/$old" "$dir/$old.json"; done
fi
"""

# The command's own output still reaches the log; its last line becomes the summary.
REPORT_SCRIPT = r"""set -u
out="${TMPDIR:-/tmp}/somamemory-$$.out"
{ somamemory "$@" 2>&1; echo "$?" > "$out.rc"; } | tee "$out"
tail -n 1 "$out" > "${SOMA_TERMINATION_LOG:-/dev/termination-log}"
exit "$(cat "$out.rc")"
"""


def digest(*parts: Any, size: int = 5) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:size]


def job_name(task: dict[str, Any], component: str) -> str:
    """One Job per request (its uid): a Job name is a label value, 63 characters at most."""
    meta = task["metadata"]
    return f"{meta['name'][:46].rstrip('-.')}-{component}-{digest(meta.get('uid', ''))}"


def schedule_prefix(schedule: str) -> str:
    """What a schedule's backups are named: this, then the scheduled time (12 digits)."""
    return f"{schedule[:40]}-"


def default_claim(instance: str) -> str:
    return f"{instance}-backups"


def claim_name(instance: str, claim: dict[str, Any]) -> str:
    return str(claim.get("name") or default_claim(instance))


def backup_file(task: dict[str, Any]) -> str:
    """The export file's name in the claim."""
    return f"{task['metadata']['name']}.jsonl"


def task_owner(task: dict[str, Any]) -> dict[str, Any]:
    meta = task["metadata"]
    return {
        "apiVersion": API_VERSION,
        "kind": task["kind"],
        "name": meta["name"],
        "uid": meta.get("uid", ""),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def claim(instance_meta: dict[str, Any], name: str, spec: dict[str, Any]) -> Manifest:
    """A backups claim to create (no owner: it outlives every backup and the instance)."""
    body: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": str(spec["size"])}},
    }
    if spec.get("storageClassName"):
        body["storageClassName"] = spec["storageClassName"]
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": name,
            "namespace": instance_meta["namespace"],
            "labels": labels(instance_meta, "backups"),
        },
        "spec": body,
    }


def _job(
    task: dict[str, Any],
    component: str,
    instance_meta: dict[str, Any],
    spec: dict[str, Any],
    image: str,
    script: str,
    args: list[str],
    claim_ref: str | None,
    read_only: bool = True,
) -> Manifest:
    """A run-once Job of ``image`` with the instance's settings, the claim at /backups."""
    main = container(spec, instance_meta, [])
    main |= {
        "image": image,
        "command": ["/bin/sh", "-c", script, component],
        "args": args,
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    pod = pod_spec(spec, main, {"emptyDir": {}}, restartPolicy="Never")
    if claim_ref is not None:
        main["volumeMounts"] = [
            *main["volumeMounts"],
            {"name": "backups", "mountPath": BACKUP_DIR, "readOnly": read_only},
        ]
        pod["volumes"] = [
            *pod["volumes"],
            {
                "name": "backups",
                "persistentVolumeClaim": {"claimName": claim_ref, "readOnly": read_only},
            },
        ]
    task_spec = task["spec"]
    annotations = {ANNOTATION_IMAGE: image}
    if instance_meta.get("version"):
        annotations[ANNOTATION_OPERATOR_VERSION] = instance_meta["version"]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(task, component),
            "namespace": instance_meta["namespace"],
            "labels": labels(instance_meta, component),
            "annotations": annotations,
            "ownerReferences": [task_owner(task)],
        },
        "spec": {
            "backoffLimit": task_spec.get("backoffLimit", 1),
            "activeDeadlineSeconds": task_spec.get("activeDeadlineSeconds", 21600),
            "ttlSecondsAfterFinished": 86400,
            "template": {
                "metadata": pod_metadata(spec, labels(instance_meta, component), {}),
                "spec": pod,
            },
        },
    }


def _namespace_args(task_spec: dict[str, Any]) -> list[str]:
    ns = task_spec.get("memoryNamespace")
    return ["--namespace", ns] if ns else []


def backup_job(
    task: dict[str, Any],
    instance_meta: dict[str, Any],
    spec: dict[str, Any],
    image: str,
    claim_ref: str,
    keep: int = 0,
    prefix: str = "",
) -> Manifest:
    """``somamemory export`` into ``/backups/<backup name>.jsonl``; ``keep`` > 0 (a schedule's
    backup) also deletes that schedule's older files (named ``<prefix><12 digits>.jsonl``)."""
    path = f"{BACKUP_DIR}/{backup_file(task)}"
    args = [path, str(keep), prefix, *_namespace_args(task["spec"])]
    return _job(task, "backup", instance_meta, spec, image, BACKUP_SCRIPT, args, claim_ref, False)


def _index_args(spec: dict[str, Any]) -> list[str]:
    """With milvus-lite the vectors live on the server pod's volume: a Job only enqueues them
    (``--no-index``) and the running server's reconciler writes them."""
    return ["--no-index"] if embedded_milvus(spec) else []


def restore_job(
    task: dict[str, Any],
    instance_meta: dict[str, Any],
    spec: dict[str, Any],
    image: str,
    claim_ref: str,
    path: str,
) -> Manifest:
    """``somamemory import /backups/<path>``, the claim mounted read-only."""
    args = ["import", f"{BACKUP_DIR}/{path}", *_index_args(spec)]
    return _job(task, "restore", instance_meta, spec, image, REPORT_SCRIPT, args, claim_ref)


def reindex_job(
    task: dict[str, Any], instance_meta: dict[str, Any], spec: dict[str, Any], image: str
) -> Manifest:
    """``somamemory reindex``: the vector store rebuilt from PostgreSQL."""
    args = ["reindex", *_namespace_args(task["spec"]), *_index_args(spec)]
    return _job(task, "reindex", instance_meta, spec, image, REPORT_SCRIPT, args, None)
