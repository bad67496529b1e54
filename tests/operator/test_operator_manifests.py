"""The operator's static artefacts: rendered manifests, the CRD, the example and the chart."""

from __future__ import annotations

import copy
import pathlib
import subprocess
import urllib.parse
from typing import Any

import jsonschema
import pytest
import yaml

from somamemory_operator import codegen, manifests
from somamemory_operator.crd import crd, crd_yaml
from somamemory_operator.envvars import OWNED_ENV, free_env
from somamemory_operator.service_env import SERVICE_ENV
from somamemory_operator.spec import SpecError, check_name, normalize
from tests.support.k8s import helm_binary, validate_manifests

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "somamemory-operator"
EXAMPLE = ROOT / "operator" / "examples" / "somamemory.yaml"
META = {"name": "memory", "namespace": "default", "uid": "0b7c3a56-0000-4000-8000-000000000001"}


def _example() -> dict[str, Any]:
    return yaml.safe_load(EXAMPLE.read_text())


def _all_children(spec: dict[str, Any]) -> list[dict[str, Any]]:
    cm = manifests.configmap(META, spec)
    docs = [
        cm,
        manifests.migration_job(META, spec),
        manifests.deployment(META, spec, manifests.config_hash(cm)),
        manifests.service(META, spec),
        manifests.autoscaler(META, spec),
        manifests.disruption_budget(META, spec),
    ]
    return [doc for doc in docs if doc is not None]


def _schema() -> dict[str, Any]:
    return crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def test_every_rendered_manifest_is_valid_kubernetes() -> None:
    spec = normalize(_example()["spec"])
    docs = _all_children(spec)
    assert {d["kind"] for d in docs} == {
        "ConfigMap",
        "Job",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
    }
    validate_manifests(docs)
    validate_manifests(_all_children(normalize({**_example()["spec"], "milvus": {"uri": "x"}})))


def test_the_settings_spec_env_accepts_come_from_the_service_settings_object() -> None:
    """One source of truth: service_env.py is generated from somamemory.settings.Settings."""
    from somamemory.settings import known_env_vars

    assert codegen.SERVICE_ENV_FILE.read_text() == codegen.service_env_source(), (
        "regenerate: python -m somamemory_operator.crd --write"
    )
    assert set(SERVICE_ENV) == known_env_vars()
    assert set(OWNED_ENV) <= set(SERVICE_ENV)  # a renamed setting fails here
    assert "SOMA_EMBEDDINGS_URL" in free_env() and "SOMA_EMBEDDINGS_API_KEY" in free_env()
    assert set(free_env()) | set(OWNED_ENV) == known_env_vars()


def test_every_rendered_env_var_is_one_the_service_reads() -> None:
    from somamemory.settings import known_env_vars

    spec = normalize(_example()["spec"])
    assert manifests.rendered_env_names(*_all_children(spec)[:3]) <= known_env_vars()


def test_deployment_has_probes_port_security_and_owner() -> None:
    spec = normalize(_example()["spec"])
    dep = manifests.deployment(META, spec, "abc")
    pod = dep["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert container["ports"][0]["containerPort"] == 10101
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert pod["securityContext"]["runAsUser"] == 10001
    assert "replicas" not in dep["spec"]  # autoscaling on: the HPA owns it
    assert dep["metadata"]["ownerReferences"][0]["uid"] == META["uid"]


def test_hash_embeddings_are_forced_only_when_asked() -> None:
    """Unset, the service embeds with the image's local model; forceHash is for tests only."""
    spec = normalize(_example()["spec"])
    assert spec["embeddings"]["forceHash"] is False
    assert "SOMA_FORCE_HASH_EMBEDDINGS" not in manifests.configmap(META, spec)["data"]
    forced = normalize({**_example()["spec"], "embeddings": {"forceHash": True}})
    assert manifests.configmap(META, forced)["data"]["SOMA_FORCE_HASH_EMBEDDINGS"] == "true"


def test_a_new_image_gets_a_new_migration_job() -> None:
    spec = normalize(_example()["spec"])
    newer = {**spec, "image": "ghcr.io/somamemory/somamemory:0.2.0"}
    assert manifests.migration_job_name(META, spec) != manifests.migration_job_name(META, newer)
    assert manifests.migration_job_name(META, spec) == manifests.migration_job_name(
        META, {**spec, "replicas": 9}
    )


def test_migration_job_reports_its_revision_in_the_termination_message() -> None:
    job = manifests.migration_job(META, normalize(_example()["spec"]))
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["migrate"]
    # the file when the command wrote one, else (a failure) the tail of its log
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert "terminationMessagePath" not in container  # the default, /dev/termination-log


def test_crd_is_valid_and_the_checked_in_copies_match_it() -> None:
    validate_manifests([crd()])
    text = crd_yaml()
    assert (ROOT / "operator" / "crd" / "somamemory-crd.yaml").read_text() == text
    assert (CHART / "templates" / "crd.yaml").read_text() == codegen.chart_crd_template(text)
    assert not (CHART / "crds" / "somamemory-crd.yaml").exists()  # crds/ is never upgraded
    version = crd()["spec"]["versions"][0]
    assert version["subresources"] == {
        "status": {},
        "scale": {
            "specReplicasPath": ".spec.replicas",
            "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": ".status.selector",
        },
    }
    columns = {c["name"]: c for c in version["additionalPrinterColumns"]}
    assert list(columns) == ["Phase", "Ready", "Schema", "Image", "Age"]
    assert all(c.get("priority", 0) == 0 for c in columns.values())  # all in plain `get`
    assert columns["Schema"]["jsonPath"] == ".status.schemaRevision"
    assert crd()["spec"]["names"]["shortNames"] == ["smem"]


def test_example_validates_against_the_crd_schema() -> None:
    jsonschema.validate(_example(), _schema())
    normalize(_example()["spec"])


@pytest.mark.parametrize(
    "change",
    [
        {"replicas": -1},
        {"image": ""},
        {"batching": {"size": 0}},
        {"logLevel": "LOUD"},
        {"env": [{"name": "lower", "value": "x"}]},
        {"apiTokenSecretRef": {}},
    ],
)
def test_crd_schema_refuses_bad_fields(change: dict[str, Any]) -> None:
    doc = copy.deepcopy(_example())
    doc["spec"].update(change)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, _schema())


def test_semantic_problems_are_named_exactly() -> None:
    spec = _example()["spec"]
    with pytest.raises(SpecError, match="minReplicas \\(9\\) exceeds maxReplicas \\(6\\)"):
        normalize({**spec, "autoscaling": {"enabled": True, "minReplicas": 9, "maxReplicas": 6}})
    with pytest.raises(SpecError, match="set uri or host, not both"):
        normalize({**spec, "milvus": {"uri": "http://m:19530", "host": "m"}})
    with pytest.raises(SpecError, match="DNS-1035"):
        check_name("Memory.One")


def _helm(*args: str) -> str:
    done = subprocess.run(
        [str(helm_binary()), *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.parametrize("values", [None, "namespaced-values.yaml"])
def test_operator_chart_lints_and_renders_valid_manifests(values: str | None) -> None:
    extra = ["-f", str(CHART / "ci" / values)] if values else []
    _helm("lint", "--strict", str(CHART), *extra)
    rendered = _helm("template", "soma", str(CHART), "--include-crds", *extra)
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    peerings = [d for d in docs if d["apiVersion"] == "kopf.dev/v1"]
    validate_manifests([d for d in docs if d not in peerings])
    validate_peerings(peerings, docs)
    kinds = {d["kind"] for d in docs}
    assert {"CustomResourceDefinition", "ServiceAccount", "Deployment"} <= kinds
    if values:
        assert sum(d["kind"] == "Role" for d in docs) == 2 and "ClusterRole" not in kinds
    else:
        assert {"ClusterRole", "ClusterRoleBinding"} <= kinds
    (dep,) = [d for d in docs if d["kind"] == "Deployment"]
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][:4] == ["kopf", "run", "-m", "somamemory_operator"]
    # kopf's liveness server, the probes and the ports agree; so do the metrics env and port.
    (liveness,) = [a for a in container["args"] if a.startswith("--liveness=")]
    endpoint = urllib.parse.urlsplit(liveness.removeprefix("--liveness="))
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert endpoint.port == ports["health"]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": endpoint.path, "port": "health"}
    env = {e["name"]: e.get("value") for e in container["env"]}
    metrics_port = env.get("SOMA_OPERATOR_METRICS_PORT")
    assert (int(metrics_port) if metrics_port else None) == ports.get("metrics")
    assert ("metrics" in ports) is (values is None)  # the ci values turn metrics off


def validate_peerings(peerings: list[dict[str, Any]], docs: list[dict[str, Any]]) -> None:
    """kopf's peering objects, against the peering CRDs the chart ships."""
    crds = {
        d["spec"]["names"]["kind"]: d
        for d in docs
        if d["kind"] == "CustomResourceDefinition" and d["spec"]["group"] == "kopf.dev"
    }
    assert peerings, "peering is on by default: the chart creates the peering object"
    for doc in peerings:
        schema = crds[doc["kind"]]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        jsonschema.validate(doc, schema)


def test_kopf_run_finds_the_handlers() -> None:
    import kopf

    import somamemory_operator  # noqa: F401

    registry = kopf.get_default_registry()
    assert registry._spawning.has_handlers(resource=_resource())


def _resource() -> Any:
    import kopf

    return kopf.Resource("soma.dev", "v1alpha1", "somamemories")
