"""Settings through the SomaMemory: every variable the service reads, values or Secret/ConfigMap
refs, structured fields first, removals that reach the pods, a missing Secret named in status."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from somamemory_operator import manifests
from somamemory_operator.constants import ANNOTATION_CONFIG_HASH
from somamemory_operator.envvars import free_env
from somamemory_operator.service_env import SECRET_ENV
from somamemory_operator.spec import SpecError, normalize
from tests.operator.play import job_pod, waiting
from tests.operator.test_operator_lifecycle import (
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

META = {"name": NAME, "namespace": "default", "uid": "0b7c3a56-0000-4000-8000-000000000002"}
EMBEDDINGS = [
    {"name": "SOMA_EMBEDDINGS_URL", "value": "http://embedder.ai.svc/v1"},
    {"name": "SOMA_EMBEDDINGS_MODEL", "value": "text-embedding-3-small"},
    {
        "name": "SOMA_EMBEDDINGS_API_KEY",
        "valueFrom": {"secretKeyRef": {"name": "embedder", "key": "api-key"}},
    },
    {
        "name": "SOMA_MAX_TOP_K",
        "valueFrom": {"configMapKeyRef": {"name": "tuning", "key": "top-k"}},
    },
]


def _env_of(pod_template: dict[str, Any]) -> dict[str, Any]:
    (container,) = pod_template["spec"]["containers"]
    return {item["name"]: item for item in container["env"]}


def test_every_setting_the_service_reads_can_be_set_in_env() -> None:
    env = [
        {"name": var, "valueFrom": {"secretKeyRef": {"name": "s", "key": var.lower()}}}
        if var in SECRET_ENV
        else {"name": var, "value": "1"}
        for var in free_env()
    ]
    spec = normalize(_spec(env=env))
    cm = manifests.configmap(META, spec)
    dep = manifests.deployment(META, spec, manifests.config_hash(cm))
    assert set(free_env()) <= manifests.rendered_env_names(cm, dep)
    assert len(free_env()) > 30  # the service's whole surface, not a hand-picked few


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ({"name": "SOMA_LOG_LEVEL", "value": "DEBUG"}, "SOMA_LOG_LEVEL is set by spec.logLevel"),
        ({"name": "REDIS_HOST", "value": "r"}, "REDIS_HOST is set by spec.redis.host"),
        ({"name": "SOMA_PORT", "value": "1"}, "SOMA_PORT is set by the operator"),
        ({"name": "SOMA_NOPE", "value": "x"}, "SOMA_NOPE is not a setting the service reads"),
        (
            {"name": "SOMA_EMBEDDINGS_API_KEY", "value": "sk-123"},
            "SOMA_EMBEDDINGS_API_KEY is a secret: pass it with valueFrom.secretKeyRef",
        ),
        ({"name": "SOMA_MAX_TOP_K"}, "set value or valueFrom"),
    ],
)
def test_env_entries_the_operator_refuses_say_why(entry: dict[str, Any], problem: str) -> None:
    with pytest.raises(SpecError, match=problem.replace(".", r"\.")):
        normalize(_spec(env=[entry]))


def test_structured_fields_take_precedence_over_env() -> None:
    """Even when an older CRD lets an owned variable through, the structured field wins."""
    spec = normalize(_spec(logLevel="WARNING"))
    spec["env"] = [
        {"name": "SOMA_LOG_LEVEL", "value": "DEBUG"},
        {"name": "POSTGRES_URL", "valueFrom": {"secretKeyRef": {"name": "other", "key": "u"}}},
    ]
    cm = manifests.configmap(META, spec)
    assert cm["data"]["SOMA_LOG_LEVEL"] == "WARNING"
    env = _env_of(manifests.deployment(META, spec, "h")["spec"]["template"])
    assert env["POSTGRES_URL"]["valueFrom"]["secretKeyRef"]["name"] == "soma-postgres"


async def _ready_with(cluster: Cluster, ns: str, spec: dict[str, Any]) -> dict[str, Any]:
    await _create(cluster, ns, spec)
    job = await _job(cluster, ns)
    await _finish_job(cluster, ns, job["metadata"]["name"])
    await cluster.eventually(lambda: cluster.get("Deployment", ns, NAME), "the Deployment")
    await _roll_out(cluster, ns)
    await cluster.eventually(lambda: _phase_is(cluster, ns, "Ready"), "Ready")
    return job


async def test_env_values_and_refs_reach_the_server_and_migration_pods(
    operator: Cluster,
) -> None:
    ns = _ns()
    job = await _ready_with(operator, ns, _spec(env=EMBEDDINGS))
    cm = await operator.get("ConfigMap", ns, NAME)
    assert cm["data"]["SOMA_EMBEDDINGS_URL"] == "http://embedder.ai.svc/v1"
    assert "SOMA_EMBEDDINGS_API_KEY" not in cm["data"]  # a secret never lands in the ConfigMap
    dep = await operator.get("Deployment", ns, NAME)
    for template in (dep["spec"]["template"], job["spec"]["template"]):
        env = _env_of(template)
        assert env["SOMA_EMBEDDINGS_API_KEY"]["valueFrom"] == EMBEDDINGS[2]["valueFrom"]
        assert env["SOMA_MAX_TOP_K"]["valueFrom"] == EMBEDDINGS[3]["valueFrom"]


async def test_a_removed_setting_leaves_the_pods_and_a_change_rolls_them(
    operator: Cluster,
) -> None:
    ns = _ns()
    await _ready_with(operator, ns, _spec(env=EMBEDDINGS))
    before = (await operator.get("Deployment", ns, NAME))["spec"]["template"]
    await operator.patch("SomaMemory", ns, NAME, {"spec": {"env": EMBEDDINGS[1:2]}})

    async def removed() -> dict[str, Any] | None:
        cm = await operator.get("ConfigMap", ns, NAME)
        return cm if "SOMA_EMBEDDINGS_URL" not in cm["data"] else None

    cm = await operator.eventually(removed, "SOMA_EMBEDDINGS_URL gone from the ConfigMap")
    assert cm["data"]["SOMA_EMBEDDINGS_MODEL"] == "text-embedding-3-small"

    async def rolled() -> dict[str, Any] | None:
        dep = await operator.get("Deployment", ns, NAME)
        template = dep["spec"]["template"]
        changed = template["metadata"]["annotations"] != before["metadata"]["annotations"]
        return template if changed else None

    after = await operator.eventually(rolled, "a new settings checksum on the pod template")
    assert after["metadata"]["annotations"][ANNOTATION_CONFIG_HASH] == manifests.config_hash(cm)
    env = _env_of(after)
    assert "SOMA_EMBEDDINGS_API_KEY" not in env and "SOMA_MAX_TOP_K" not in env


async def test_a_missing_secret_is_named_in_status_until_it_exists(operator: Cluster) -> None:
    ns = _ns()
    await _create(operator, ns, _spec())
    job = await _job(operator, ns)
    # The kubelet's part: the migration pod cannot start without the PostgreSQL Secret.
    missing = waiting("CreateContainerConfigError", 'secret "soma-postgres" not found')
    await job_pod(operator, ns, job, [missing])

    async def stalled() -> dict[str, Any] | None:
        status = await _status(operator, ns)
        conds = {c["type"]: c for c in status.get("conditions", [])}
        return status if conds.get("Stalled", {}).get("status") == "True" else None

    status = await operator.eventually(stalled, "Stalled with the missing Secret")
    cond = _conditions(status)["Stalled"]
    assert cond["reason"] == "SecretNotFound"
    assert (
        'Secret "soma-postgres" (named by spec.postgres.urlSecretRef) does not exist'
        in (cond["message"])
    )
    assert f"in namespace {ns}: create it" in cond["message"]
    assert _conditions(status)["Reconciling"]["status"] == "False"
    assert status["phase"] == "Failed"  # nothing runs yet

    # Someone creates the Secret: the pod starts, the migration is in flight again.
    running = {"name": "somamemory", "state": {"running": {}}, "ready": True}
    await job_pod(operator, ns, job, [running])
    status = await operator.eventually(lambda: _phase_is(operator, ns, "Migrating"), "Migrating")
    assert _conditions(status)["Stalled"]["status"] == "False"
    assert _conditions(status)["Reconciling"]["reason"] == "Migrating"
