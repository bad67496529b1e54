"""The data Jobs' scripts, run as their pods run them (``/bin/sh -c``), with the real
``somamemory`` command against the machine's PostgreSQL: the summaries the operator reads back,
the finished file only, and a schedule's files kept to its ``keep``. Plus the pure parts: the
cron schedules, and what a Job does without a Milvus server."""

from __future__ import annotations

import datetime
import json
import os
import pathlib
import subprocess
import sys
from collections.abc import Iterator

import pytest

from somamemory_operator import cron, task_manifests
from somamemory_operator.spec import normalize
from somamemory_operator.tasks import _read_backup, _read_restore
from tests.conftest import migrated_database

UTC = datetime.UTC
VERSION = {
    "version": 1,
    "payload": {"text": "green tea"},
    "importance": 0.5,
    "memory_type": "semantic",
    "created_at": "2026-01-01T00:00:00Z",
    "updated_at": "2026-01-01T00:00:00Z",
}


@pytest.fixture
def database() -> Iterator[str]:
    with migrated_database() as url:
        yield url


def _run(
    script: str, args: list[str], tmp: pathlib.Path, url: str
) -> tuple[subprocess.CompletedProcess[str], str]:
    """Run a Job's script; return the process and its termination message."""
    bin_dir = tmp / "bin"  # the image's `somamemory`: this interpreter's
    bin_dir.mkdir(exist_ok=True)
    command = bin_dir / "somamemory"
    command.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m somamemory.cli "$@"\n')
    command.chmod(0o755)
    log = tmp / "termination-log"
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "POSTGRES_URL": url,
        "SOMA_DATA_DIR": str(tmp / "data"),
        "SOMA_FORCE_HASH_EMBEDDINGS": "true",
        "SOMA_TERMINATION_LOG": str(log),
        "TMPDIR": str(tmp),
    }
    done = subprocess.run(
        ["/bin/sh", "-c", script, "job", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    return done, log.read_text() if log.exists() else ""


def test_restore_then_backup_leave_the_summaries_the_operator_reads(
    database: str, tmp_path: pathlib.Path
) -> None:
    backups = tmp_path / "backups"
    backups.mkdir()
    export = backups / "old.jsonl"
    lines = [
        {"format": "somamemory.export", "version": 1, "namespace": None, "memories": 2},
        {"namespace": "team", "coord": "1.0,2.0", "memory_type": "semantic", "versions": [VERSION]},
        {"namespace": "team", "coord": "3.0,4.0", "memory_type": "semantic", "versions": [VERSION]},
    ]
    export.write_text("".join(json.dumps(line) + "\n" for line in lines))

    args = ["import", str(export), "--no-index"]
    done, said = _run(task_manifests.REPORT_SCRIPT, args, tmp_path, database)
    assert done.returncode == 0, done.stdout
    assert _read_restore([said]) == {"memories": 2, "changed": 2}
    assert "imported 2 memories" in done.stdout  # the command's output still reaches the log

    for old in ("nightly-202601010300", "nightly-202601020300", "other-202601010300"):
        (backups / f"{old}.jsonl").write_text("{}\n")
        (backups / f"{old}.jsonl.json").write_text("{}\n")
    target = backups / "nightly-202601030300.jsonl"
    args = [str(target), "2", "nightly-", "--namespace", "team"]
    done, said = _run(task_manifests.BACKUP_SCRIPT, args, tmp_path, database)
    assert done.returncode == 0, done.stderr
    summary = _read_backup([said])
    assert summary == {"bytes": target.stat().st_size, "memories": 2}
    assert json.loads((backups / "nightly-202601030300.jsonl.json").read_text())["memories"] == 2
    assert sorted(p.name for p in backups.glob("*.jsonl")) == [
        "nightly-202601020300.jsonl",  # keep 2: the newest two of this schedule
        "nightly-202601030300.jsonl",
        "old.jsonl",
        "other-202601010300.jsonl",  # another schedule's
    ]
    assert not (backups / "nightly-202601010300.jsonl.json").exists()


def test_cron_schedules() -> None:
    at = datetime.datetime(2026, 12, 6, 9, 0, tzinfo=UTC)  # a Sunday
    weekdays = cron.parse("*/15 2 * * 1-5")
    assert weekdays.next_after(at) == datetime.datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
    since = at - datetime.timedelta(days=5)
    assert weekdays.last_due(since, at) == datetime.datetime(2026, 12, 4, 2, 45, tzinfo=UTC)
    assert cron.parse("@daily").next_after(at) == datetime.datetime(2026, 12, 7, tzinfo=UTC)
    # both day fields restricted: either one runs (the 1st, or a Friday)
    either = cron.parse("0 0 1 * 5")
    assert either.next_after(at) == datetime.datetime(2026, 12, 11, tzinfo=UTC)
    for wrong, problem in (
        ("61 * * * *", "minute field"),
        ("* * * *", "5 fields"),
        ("0 0 30 2 *", "never comes"),
    ):
        with pytest.raises(cron.CronError, match=problem):
            cron.parse(wrong).next_after(at)


def test_without_a_milvus_server_the_jobs_only_enqueue_vectors() -> None:
    """milvus-lite lives on the server pod's volume: the running server writes the vectors."""
    spec = normalize(
        {
            "image": "img",
            "replicas": 1,
            "apiTokenSecretRef": {"name": "t"},
            "postgres": {"urlSecretRef": {"name": "p"}},
        }
    )
    meta = {"name": "memory", "namespace": "ns", "uid": "u"}
    task = {"kind": "SomaMemoryReindex", "metadata": {"name": "r", "uid": "1"}, "spec": {}}
    job = task_manifests.reindex_job(task, meta, spec, "img")
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["reindex", "--no-index"]
    assert len(job["metadata"]["name"]) <= 63


def test_the_backup_example_validates_against_its_crds() -> None:
    import jsonschema
    import yaml

    from somamemory_operator.task_crd import task_crds
    from tests.operator.test_operator_manifests import ROOT

    schemas = {
        c["spec"]["names"]["kind"]: c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        for c in task_crds()
    }
    docs = list(yaml.safe_load_all((ROOT / "operator" / "examples" / "backups.yaml").read_text()))
    assert {d["kind"] for d in docs} == {
        "SomaMemoryScheduledBackup",
        "SomaMemoryRestore",
        "SomaMemoryReindex",
    }
    for doc in docs:
        jsonschema.validate(doc, schemas[doc["kind"]])
        cron.parse(doc["spec"].get("schedule", "@daily"))
