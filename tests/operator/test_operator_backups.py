"""Backups, restores and reindexes against the real operator: each runs its Job with the
instance's image and settings, reports what the Job said, and never overlaps a migration."""

from __future__ import annotations

import asyncio
import datetime
import json
import urllib.request
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from somamemory_operator.schedule import tick
from tests.operator.play import job_pod, terminated

if TYPE_CHECKING:
    from tests.operator.conftest import Cluster, Operator

pytestmark = pytest.mark.asyncio(loop_scope="session")

IMAGE_V1 = "ghcr.io/somamemory/somamemory:1.0.0"
IMAGE_V2 = "ghcr.io/somamemory/somamemory:1.1.0"
NAME = "memory"
API = "soma.dev/v1alpha1"
COMPONENT = "app.kubernetes.io/component"


def _ns() -> str:
    return f"b-{uuid.uuid4().hex[:8]}"


def _spec(**overrides: Any) -> dict[str, Any]:
    spec = {
        "image": IMAGE_V1,
        "replicas": 1,
        "apiTokenSecretRef": {"name": "soma-token"},
        "postgres": {"urlSecretRef": {"name": "soma-postgres"}},
        "milvus": {"host": "milvus"},
    }
    return spec | overrides


async def _create(cluster: Cluster, kind: str, ns: str, name: str, spec: dict[str, Any]) -> None:
    body = {
        "apiVersion": API,
        "kind": kind,
        "metadata": {
            "name": name,
            "namespace": ns,
            "uid": str(uuid.uuid4()),
            "generation": 1,
            "resourceVersion": "1",
            "creationTimestamp": f"{datetime.datetime.now(datetime.UTC):%Y-%m-%dT%H:%M:%SZ}",
        },
        "spec": spec,
    }
    await cluster.call(cluster.kube.create, body)


async def _jobs(cluster: Cluster, ns: str, component: str) -> list[dict[str, Any]]:
    jobs = await cluster.call(cluster.kube.list, "Job", ns, {COMPONENT: component})
    return [j for j in jobs if not j["metadata"].get("deletionTimestamp")]


async def _one_job(cluster: Cluster, ns: str, component: str, image: str = "") -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        found = [
            j
            for j in await _jobs(cluster, ns, component)
            if not image or j["spec"]["template"]["spec"]["containers"][0]["image"] == image
        ]
        return found[0] if len(found) == 1 else None

    return await cluster.eventually(probe, f"one {component} Job")


async def _finish(
    cluster: Cluster, ns: str, job: dict[str, Any], message: str = "", ok: bool = True
) -> None:
    """Play the Job's pod (its termination message) and the Job controller (7 s of work)."""
    if message:
        await job_pod(cluster, ns, job, [terminated(0 if ok else 1, message)])
    start = datetime.datetime(2026, 1, 1, 3, 0, 0, tzinfo=datetime.UTC)
    times = {
        "startTime": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "completionTime": (start + datetime.timedelta(seconds=7)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if ok:
        status = {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}], **times}
    else:
        failed = {
            "type": "Failed",
            "status": "True",
            "reason": "BackoffLimitExceeded",
            "message": "Job has reached the specified backoff limit",
        }
        status = {"failed": 2, "conditions": [failed], "startTime": times["startTime"]}
    name = job["metadata"]["name"]
    await cluster.call(cluster.kube.patch, "Job", ns, name, {"status": status}, "status")


async def _status(cluster: Cluster, kind: str, ns: str, name: str) -> dict[str, Any]:
    return ((await cluster.get(kind, ns, name)) or {}).get("status") or {}


async def _phase(cluster: Cluster, kind: str, ns: str, name: str, phase: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        status = await _status(cluster, kind, ns, name)
        return status if status.get("phase") == phase else None

    return await cluster.eventually(probe, f"{kind} {name} {phase}")


async def _reason(cluster: Cluster, kind: str, ns: str, name: str, reason: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        status = await _status(cluster, kind, ns, name)
        return status if status.get("reason") == reason else None

    return await cluster.eventually(probe, f"{kind} {name} waiting with {reason}")


async def _migrated(cluster: Cluster, ns: str, spec: dict[str, Any] | None = None) -> None:
    """A SomaMemory whose first migration has succeeded (its data Jobs may run)."""
    await _create(cluster, "SomaMemory", ns, NAME, spec or _spec())
    await _finish(cluster, ns, await _one_job(cluster, ns, "migration"))

    async def migrated() -> bool:
        return (await _status(cluster, "SomaMemory", ns, NAME)).get("migratedImage") == IMAGE_V1

    await cluster.eventually(migrated, "the first migration applied")


async def _claim(cluster: Cluster, ns: str, name: str) -> None:
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    await cluster.call(cluster.kube.create, claim)


def _pod(job: dict[str, Any]) -> dict[str, Any]:
    return job["spec"]["template"]["spec"]


def _metrics(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


async def test_a_backup_exports_to_its_claim_and_reports_size_count_and_duration(
    operator: Operator,
) -> None:
    ns = _ns()
    await _migrated(operator, ns)
    spec = {"instance": NAME, "memoryNamespace": "team-a", "claim": {"size": "5Gi"}}
    await _create(operator, "SomaMemoryBackup", ns, "nightly", spec)
    job = await _one_job(operator, ns, "backup")

    (main,) = _pod(job)["containers"]
    assert main["image"] == IMAGE_V1  # the image the schema was migrated with
    assert main["command"][:2] == ["/bin/sh", "-c"] and "somamemory export" in main["command"][2]
    assert main["args"] == ["/backups/nightly.jsonl", "0", "", "--namespace", "team-a"]
    assert main["envFrom"] == [{"configMapRef": {"name": NAME}}]  # the instance's settings
    env = {e["name"]: e["valueFrom"]["secretKeyRef"]["name"] for e in main["env"]}
    assert env["POSTGRES_URL"] == "soma-postgres" and env["SOMA_API_TOKEN"] == "soma-token"
    assert {"name": "backups", "mountPath": "/backups", "readOnly": False} in main["volumeMounts"]
    volumes = {v["name"]: v for v in _pod(job)["volumes"]}
    assert volumes["backups"]["persistentVolumeClaim"]["claimName"] == "memory-backups"
    assert job["metadata"]["ownerReferences"][0]["kind"] == "SomaMemoryBackup"
    claim = await operator.get("PersistentVolumeClaim", ns, "memory-backups")  # from claim.size
    assert claim is not None and claim["spec"]["resources"]["requests"]["storage"] == "5Gi"
    await _phase(operator, "SomaMemoryBackup", ns, "nightly", "Running")

    summary = {"file": "nightly.jsonl", "bytes": 2048, "memories": 12}
    await _finish(operator, ns, job, json.dumps(summary))
    status = await _phase(operator, "SomaMemoryBackup", ns, "nightly", "Succeeded")
    assert (status["bytes"], status["memories"], status["durationSeconds"]) == (2048, 12, 7)
    assert status["startedAt"] == "2026-01-01T03:00:00Z"
    assert status["completedAt"] == "2026-01-01T03:00:07Z"
    assert (status["claimName"], status["file"]) == ("memory-backups", "nightly.jsonl")
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions == {"Ready": "True", "Reconciling": "False", "Stalled": "False"}

    async def noted() -> dict[str, Any] | None:
        smem = await _status(operator, "SomaMemory", ns, NAME)
        return smem if smem.get("lastBackupTime") else None

    smem = await operator.eventually(noted, "lastBackupTime on the SomaMemory")
    assert (smem["lastBackupTime"], smem["lastBackup"]) == ("2026-01-01T03:00:07Z", "nightly")
    gauge = (
        f'somamemory_operator_instance_last_backup_age_seconds{{name="{NAME}",namespace="{ns}"}}'
    )

    async def exported() -> bool:
        return gauge in await asyncio.to_thread(_metrics, operator.metrics_url)

    await operator.eventually(exported, "the last-backup-age gauge")


async def test_failures_say_what_to_fix(operator: Operator) -> None:
    ns = _ns()
    await _create(operator, "SomaMemoryReindex", ns, "lost", {"instance": "nowhere"})
    status = await _reason(operator, "SomaMemoryReindex", ns, "lost", "InstanceNotFound")
    assert "SomaMemory nowhere (spec.instance) does not exist" in status["message"]
    assert {c["type"]: c["status"] for c in status["conditions"]}["Stalled"] == "True"

    await _migrated(operator, ns)
    spec = {"instance": NAME, "claim": {"name": "vault"}}
    await _create(operator, "SomaMemoryBackup", ns, "weekly", spec)
    status = await _reason(operator, "SomaMemoryBackup", ns, "weekly", "ClaimNotFound")
    assert "PersistentVolumeClaim vault (spec.claim.name) does not exist" in status["message"]
    assert not await _jobs(operator, ns, "backup")

    await _claim(operator, ns, "vault")  # fixed: the backup goes on by itself
    job = await _one_job(operator, ns, "backup")
    said = "somamemory: cannot connect to PostgreSQL at db:5432"
    await _finish(operator, ns, job, said, ok=False)
    status = await _phase(operator, "SomaMemoryBackup", ns, "weekly", "Failed")
    assert status["reason"] == "JobFailed"
    assert "BackoffLimitExceeded" in status["message"] and said in status["message"]
    assert "lastBackupTime" not in await _status(operator, "SomaMemory", ns, NAME)
    events = await operator.call(operator.kube.list, "Event", ns, {})
    assert "BackupFailed" in {e["reason"] for e in events}
    await operator.call(operator.kube.delete, "SomaMemoryReindex", ns, "lost")  # no loop lingers


async def test_a_backup_waits_for_a_running_migration(operator: Operator) -> None:
    ns = _ns()
    await _migrated(operator, ns)
    await operator.patch("SomaMemory", ns, NAME, {"spec": {"image": IMAGE_V2}})
    migration = await _one_job(operator, ns, "migration", IMAGE_V2)
    await _claim(operator, ns, "memory-backups")

    await _create(operator, "SomaMemoryBackup", ns, "during", {"instance": NAME})
    status = await _reason(operator, "SomaMemoryBackup", ns, "during", "WaitingForMigration")
    assert migration["metadata"]["name"] in status["message"]
    assert status["phase"] == "Pending" and not await _jobs(operator, ns, "backup")

    await _finish(operator, ns, migration)
    job = await _one_job(operator, ns, "backup")
    assert _pod(job)["containers"][0]["image"] == IMAGE_V2  # the schema is the new image's now


async def test_a_migration_waits_for_a_running_backup(operator: Operator) -> None:
    ns = _ns()
    await _migrated(operator, ns)
    await _claim(operator, ns, "memory-backups")
    await _create(operator, "SomaMemoryBackup", ns, "before", {"instance": NAME})
    backup = await _one_job(operator, ns, "backup")

    await operator.patch("SomaMemory", ns, NAME, {"spec": {"image": IMAGE_V2}})

    async def waiting() -> dict[str, Any] | None:
        status = await _status(operator, "SomaMemory", ns, NAME)
        reasons = {c["reason"] for c in status.get("conditions") or []}
        return status if "WaitingForDataJob" in reasons else None

    status = await operator.eventually(waiting, "the migration waiting for the backup")
    assert status["phase"] == "Migrating" and backup["metadata"]["name"] in status["message"]
    assert [j for j in await _jobs(operator, ns, "migration") if IMAGE_V2 in str(j)] == []

    await _finish(operator, ns, backup, '{"file": "before.jsonl", "bytes": 10, "memories": 0}')
    await _one_job(operator, ns, "migration", IMAGE_V2)


async def test_restore_imports_a_backup_and_reindex_rebuilds_the_vectors(
    operator: Operator,
) -> None:
    ns = _ns()
    await _migrated(operator, ns)
    await _claim(operator, ns, "memory-backups")
    await _create(operator, "SomaMemoryBackup", ns, "monday", {"instance": NAME})
    await _create(operator, "SomaMemoryRestore", ns, "undo", {"instance": NAME, "backup": "monday"})
    await _reason(operator, "SomaMemoryRestore", ns, "undo", "WaitingForBackup")
    backup = await _one_job(operator, ns, "backup")
    await _finish(operator, ns, backup, '{"file": "monday.jsonl", "bytes": 99, "memories": 3}')

    job = await _one_job(operator, ns, "restore")
    (main,) = _pod(job)["containers"]
    assert main["args"] == ["import", "/backups/monday.jsonl"]
    assert "somamemory" in main["command"][2] and main["envFrom"][0]["configMapRef"]["name"] == NAME
    assert {"name": "backups", "mountPath": "/backups", "readOnly": True} in main["volumeMounts"]
    await _finish(operator, ns, job, "imported 3 memories (2 new or newer)")
    status = await _phase(operator, "SomaMemoryRestore", ns, "undo", "Succeeded")
    assert (status["memories"], status["changed"], status["durationSeconds"]) == (3, 2, 7)

    await _create(
        operator, "SomaMemoryReindex", ns, "rebuild", {"instance": NAME, "memoryNamespace": "a"}
    )
    job = await _one_job(operator, ns, "reindex")
    (main,) = _pod(job)["containers"]
    assert main["args"] == ["reindex", "--namespace", "a"]
    assert "backups" not in {v["name"] for v in _pod(job)["volumes"]}
    await _finish(operator, ns, job, "reindexed 40 memories; 2 vectors still owed (the ...)")
    status = await _phase(operator, "SomaMemoryReindex", ns, "rebuild", "Succeeded")
    assert (status["memories"], status["vectorsOwed"]) == (40, 2)


async def _backups(cluster: Cluster, ns: str) -> list[str]:
    found = await cluster.call(cluster.kube.list, "SomaMemoryBackup", ns, {})
    return sorted(
        b["metadata"]["name"] for b in found if not b["metadata"].get("deletionTimestamp")
    )


async def test_a_schedule_makes_backups_and_keeps_the_newest(operator: Operator) -> None:
    ns = _ns()
    await _migrated(operator, ns)
    await _claim(operator, ns, "memory-backups")
    template = {"instance": NAME}
    await _create(
        operator,
        "SomaMemoryScheduledBackup",
        ns,
        "nightly",
        {"schedule": "0 3 * * *", "keep": 1, "backup": template},
    )
    base = datetime.datetime.now(datetime.UTC).replace(hour=3, minute=5, second=0, microsecond=0)
    made = []
    for day in (1, 2):
        now = base + datetime.timedelta(days=day)
        wait = await operator.call(tick, operator.kube, ns, "nightly", now)
        assert wait == 23 * 3600 + 55 * 60  # until 03:00 tomorrow
        name = f"nightly-{now:%Y%m%d}0300"
        assert name in await _backups(operator, ns)
        made.append(name)
        job = await _one_job(operator, ns, "backup")
        assert _pod(job)["containers"][0]["args"][:3] == [f"/backups/{name}.jsonl", "1", "nightly-"]
        await _finish(operator, ns, job, '{"file": "x", "bytes": 1, "memories": 1}')
        await _phase(operator, "SomaMemoryBackup", ns, name, "Succeeded")
        await operator.call(operator.kube.delete, "Job", ns, job["metadata"]["name"])  # its TTL

    await operator.call(tick, operator.kube, ns, "nightly", base + datetime.timedelta(days=2))

    async def retained() -> bool:
        return await _backups(operator, ns) == made[1:]

    await operator.eventually(retained, "the older backup deleted (keep 1)")
    status = await _status(operator, "SomaMemoryScheduledBackup", ns, "nightly")
    assert status["lastBackup"] == made[-1]

    # three missed nights are made up once, by the latest
    later = base + datetime.timedelta(days=7)
    assert await operator.call(tick, operator.kube, ns, "nightly", later) == wait
    assert await _backups(operator, ns) == [*made[1:], f"nightly-{later:%Y%m%d}0300"]


async def test_an_immediate_schedule_backs_up_at_once(operator: Operator) -> None:
    ns = _ns()
    spec = {"schedule": "@weekly", "immediate": True, "backup": {"instance": NAME}}
    await _create(operator, "SomaMemoryScheduledBackup", ns, "weekly", spec)

    async def made() -> list[str]:
        return await _backups(operator, ns)

    (name,) = await operator.eventually(made, "the first backup, made at once")
    assert name.startswith("weekly-")
    backup = await operator.get("SomaMemoryBackup", ns, name)
    assert backup is not None and backup["spec"] == {"instance": NAME}
    assert backup["metadata"]["labels"]["soma.dev/scheduled-backup"] == "weekly"
    await _reason(operator, "SomaMemoryBackup", ns, name, "InstanceNotFound")
    await operator.call(operator.kube.delete, "SomaMemoryScheduledBackup", ns, "weekly")
    await operator.call(operator.kube.delete, "SomaMemoryBackup", ns, name)  # no loop lingers


async def test_backup_first_backs_up_before_each_migration(operator: Operator) -> None:
    ns = _ns()
    migration = {"backupFirst": True, "backupClaim": {"size": "2Gi"}}
    await _migrated(operator, ns, _spec(migration=migration))  # a first install: no backup
    assert await _backups(operator, ns) == []

    await operator.patch("SomaMemory", ns, NAME, {"spec": {"image": IMAGE_V2}})
    (name,) = await operator.eventually(lambda: _backups(operator, ns), "a pre-migration backup")
    assert name.startswith(f"{NAME}-premigrate-")

    async def waiting() -> dict[str, Any] | None:
        status = await _status(operator, "SomaMemory", ns, NAME)
        reasons = {c["reason"] for c in status.get("conditions") or []}
        return status if "BackingUpBeforeMigration" in reasons else None

    status = await operator.eventually(waiting, "the migration waiting for its backup")
    assert name in status["message"] and status["phase"] == "Migrating"
    job = await _one_job(operator, ns, "backup")
    assert _pod(job)["containers"][0]["image"] == IMAGE_V1  # the schema as it is
    assert not [j for j in await _jobs(operator, ns, "migration") if IMAGE_V2 in str(j)]
    claim = await operator.get("PersistentVolumeClaim", ns, "memory-backups")
    assert claim is not None and claim["spec"]["resources"]["requests"]["storage"] == "2Gi"

    await _finish(operator, ns, job, '{"file": "x.jsonl", "bytes": 5, "memories": 1}')
    await _one_job(operator, ns, "migration", IMAGE_V2)
    smem = await _status(operator, "SomaMemory", ns, NAME)
    assert smem["lastBackup"] == name
