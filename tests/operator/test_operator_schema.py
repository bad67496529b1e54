"""No one-way door: the operator knows the database's schema revision and the ones an image
knows, and refuses an image older than the applied schema, leaving the running pods alone."""

from __future__ import annotations

import pathlib
from typing import TYPE_CHECKING, Any

import pytest

from tests.operator.play import job_pod, terminated
from tests.operator.test_operator_lifecycle import (
    IMAGE_V1,
    IMAGE_V2,
    NAME,
    _conditions,
    _create,
    _finish_job,
    _job,
    _ns,
    _phase_is,
    _roll_out,
    _spec,
    _status,
)

if TYPE_CHECKING:
    from tests.operator.conftest import Cluster

V1_KNOWS = "0001\n0002\n0003\n0004\n"
V2_KNOWS = V1_KNOWS + "0005\n"


def test_migrate_print_revisions_reports_what_the_image_knows(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The service side of the contract: oldest first, the head last, no database touched."""
    from somamemory import cli, schema

    log = tmp_path / "termination-log"
    monkeypatch.setenv("SOMA_TERMINATION_LOG", str(log))
    monkeypatch.setenv("POSTGRES_URL", "postgresql://nobody@127.0.0.1:1/none")  # never dialled
    assert cli.main(["migrate", "--print-revisions"]) == 0
    lines = log.read_text().split()
    assert lines == schema.known_revisions() and lines[-1] == schema.head_revision()
    assert lines[0] == "0001" and len(lines) == len(set(lines))


async def _jobs_for(cluster: Cluster, ns: str, image: str) -> dict[str, dict[str, Any]]:
    jobs = await cluster.call(cluster.kube.list, "Job", ns, {})
    return {
        j["metadata"]["labels"]["app.kubernetes.io/component"]: j
        for j in jobs
        if j["metadata"]["annotations"]["soma.dev/image"] == image
    }


async def _run(cluster: Cluster, ns: str, job: dict[str, Any], said: str) -> None:
    """The Job's pod ran, said ``said`` in its termination message, and the Job completed."""
    await job_pod(cluster, ns, job, [terminated(0, said)])
    await _finish_job(cluster, ns, job["metadata"]["name"])


async def _deployed_image(cluster: Cluster, ns: str) -> str:
    dep = await cluster.get("Deployment", ns, NAME)
    return str(dep["spec"]["template"]["spec"]["containers"][0]["image"])


async def _wait_job(cluster: Cluster, ns: str, image: str, component: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        return (await _jobs_for(cluster, ns, image)).get(component)

    return await cluster.eventually(probe, f"the {component} Job of {image}")


async def test_an_image_older_than_the_schema_is_refused_and_the_pods_left_alone(
    operator: Cluster,
) -> None:
    ns = _ns()
    await _create(operator, ns, _spec())
    await _run(operator, ns, await _job(operator, ns), "0004\n")
    await operator.eventually(lambda: operator.get("Deployment", ns, NAME), "the Deployment")
    await _roll_out(operator, ns)
    status = await operator.eventually(lambda: _phase_is(operator, ns, "Ready"), "Ready on v1")
    assert status["schemaRevision"] == "0004"

    # Upgrade: the new image is asked what it knows, then migrates, then rolls.
    await operator.patch("SomaMemory", ns, NAME, {"spec": {"image": IMAGE_V2}})
    check = await _wait_job(operator, ns, IMAGE_V2, "schema-check")
    (container,) = check["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["migrate", "--print-revisions"]
    assert "env" not in container  # it reads no settings: a missing Secret cannot block it
    assert "migration" not in await _jobs_for(operator, ns, IMAGE_V2)  # not before the check
    await _run(operator, ns, check, V2_KNOWS)
    migration = await _wait_job(operator, ns, IMAGE_V2, "migration")
    await _run(operator, ns, migration, "0005\n")

    async def on_v2() -> bool:
        return await _deployed_image(operator, ns) == IMAGE_V2

    await operator.eventually(on_v2, "the Deployment on v2")
    await _roll_out(operator, ns)
    status = await operator.eventually(lambda: _phase_is(operator, ns, "Ready"), "Ready on v2")
    assert status["schemaRevision"] == "0005" and status["migratedImage"] == IMAGE_V2

    # Roll back to v1: it knows revisions up to 0004, the database is at 0005. Refused.
    await operator.patch("SomaMemory", ns, NAME, {"spec": {"image": IMAGE_V1}})
    await _run(operator, ns, await _wait_job(operator, ns, IMAGE_V1, "schema-check"), V1_KNOWS)
    status = await operator.eventually(lambda: _phase_is(operator, ns, "Degraded"), "refused")
    stalled = _conditions(status)["Stalled"]
    assert (stalled["status"], stalled["reason"]) == ("True", "ImageOlderThanSchema")
    assert f"{IMAGE_V1} is older than the database schema" in stalled["message"]
    assert "up to 0004, the database is at 0005 (applied for" in stalled["message"]
    assert "a downgrade is never automatic" in stalled["message"]
    assert _conditions(status)["Available"]["status"] == "True"
    assert status["schemaRevision"] == "0005" and status["migratedImage"] == IMAGE_V2
    assert await _deployed_image(operator, ns) == IMAGE_V2  # the running pods are left alone
    old_migration = (await _jobs_for(operator, ns, IMAGE_V1))["migration"]
    assert old_migration["status"]["succeeded"] == 1  # v1's old Job was not taken as consent

    # Back to v2: nothing to migrate again, Ready, no longer stalled.
    await operator.patch("SomaMemory", ns, NAME, {"spec": {"image": IMAGE_V2}})
    status = await operator.eventually(lambda: _phase_is(operator, ns, "Ready"), "Ready again")
    assert _conditions(status)["Stalled"]["status"] == "False"


async def test_a_failed_migration_says_what_the_pod_said(operator: Cluster) -> None:
    ns = _ns()
    await _create(operator, ns, _spec())
    job = await _job(operator, ns)
    said = "alembic.util.exc.CommandError: Can't locate revision identified by '0009'"
    await job_pod(operator, ns, job, [terminated(1, f"Traceback ...\n{said}\n")])
    await _finish_job(operator, ns, job["metadata"]["name"], ok=False)
    status = await operator.eventually(lambda: _phase_is(operator, ns, "Failed"), "Failed")
    assert said in _conditions(status)["Stalled"]["message"]
    assert _conditions(status)["Stalled"]["reason"] == "MigrationFailed"
    assert (await _status(operator, ns))["phase"] == "Failed"
