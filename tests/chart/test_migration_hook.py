"""With a PostgreSQL server, `somamemory migrate` runs as a Helm hook Job before the pods."""

from __future__ import annotations

import base64
from collections.abc import Callable

from tests.chart.helm import Manifest, find, one, pod_spec


def secret_ref(job: Manifest) -> dict[str, str]:
    (env,) = [e for e in pod_spec(job)["containers"][0]["env"] if e["name"] == "POSTGRES_URL"]
    ref: dict[str, str] = env["valueFrom"]["secretKeyRef"]
    return ref


def test_migration_job_is_a_pre_install_pre_upgrade_hook(
    render: Callable[..., list[Manifest]],
) -> None:
    job = one(render("external"), "Job")
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert "before-hook-creation" in annotations["helm.sh/hook-delete-policy"]
    container = pod_spec(job)["containers"][0]
    assert container["args"] == ["migrate"]
    assert pod_spec(job)["restartPolicy"] == "Never"


def test_hook_reads_the_url_from_a_secret_that_exists_before_install(
    render: Callable[..., list[Manifest]],
) -> None:
    docs = render("external")
    ref = secret_ref(one(docs, "Job"))
    hook_secret = one(docs, "Secret", ref["name"])
    annotations = hook_secret["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert int(annotations["helm.sh/hook-weight"]) < int(
        one(docs, "Job")["metadata"]["annotations"]["helm.sh/hook-weight"]
    )
    url = base64.b64decode(hook_secret["data"][ref["key"]]).decode()
    assert url == "postgresql://somamemory:secret@postgres.db.svc:5432/somamemory"


def test_hook_uses_the_users_secret_when_given(render: Callable[..., list[Manifest]]) -> None:
    docs = render("existing-secrets")
    assert secret_ref(one(docs, "Job")) == {"name": "somamemory-db", "key": "url"}
    assert not find(docs, "Secret")


def test_with_the_trial_database_the_first_migration_runs_post_install(
    render: Callable[..., list[Manifest]],
) -> None:
    docs = render("quickstart")
    job = one(docs, "Job")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "post-install,pre-upgrade"
    assert secret_ref(job) == {"name": "soma-somamemory", "key": "postgres-url"}


def test_migration_can_be_turned_off(render: Callable[..., list[Manifest]]) -> None:
    assert not find(render("external", "migration.enabled=false"), "Job")


def test_the_embedded_postgresql_needs_no_hook(render: Callable[..., list[Manifest]]) -> None:
    """`somamemory serve` migrates the embedded database itself, in the pod that owns it."""
    docs = render("defaults")
    assert not find(docs, "Job")
    assert not [
        s for s in find(docs, "Secret") if "helm.sh/hook" in s["metadata"].get("annotations", {})
    ]
