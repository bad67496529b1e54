"""The API Deployment: port 10101, the probes, a locked-down pod, and only settings it knows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from somamemory.settings import Settings, known_env_vars
from tests.chart.helm import Manifest, find, one, pod_spec

SCENARIOS = ["defaults", "existing-secrets", "ha", "ingress", "monitoring", "quickstart"]


def api_container(docs: list[Manifest]) -> dict[str, Any]:
    (container,) = pod_spec(one(docs, "Deployment", "soma-somamemory"))["containers"]
    return container


def env_names(docs: list[Manifest], container: dict[str, Any]) -> set[str]:
    """Names set through `env` plus every key of the ConfigMaps pulled in with `envFrom`."""
    names = {item["name"] for item in container.get("env", [])}
    for source in container.get("envFrom", []):
        ref = source["configMapRef"]["name"]
        names |= set(one(docs, "ConfigMap", ref)["data"])
    return names


def test_api_listens_on_10101_behind_the_service(render: Callable[..., list[Manifest]]) -> None:
    docs = render("defaults")
    container = api_container(docs)
    assert container["ports"] == [{"name": "http", "containerPort": 10101, "protocol": "TCP"}]
    assert container["args"] == ["serve"]
    service = one(docs, "Service", "soma-somamemory")
    assert service["spec"]["ports"][0]["port"] == 10101
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert Settings.model_fields["port"].default == 10101


def test_probes_use_healthz_and_readyz(render: Callable[..., list[Manifest]]) -> None:
    container = api_container(render("defaults"))
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 60


@pytest.mark.parametrize("kind", ["Deployment", "Job", "Pod"])
def test_somamemory_pods_are_non_root_read_only_and_capability_free(
    render: Callable[..., list[Manifest]], kind: str
) -> None:
    (workload,) = [
        d for d in find(render("defaults"), kind) if d["metadata"]["name"].startswith("soma-")
    ]
    spec = pod_spec(workload)
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == 10001
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["automountServiceAccountToken"] is False
    for container in spec["containers"]:
        ctx = container["securityContext"]
        assert ctx["runAsUser"] == 10001
        assert ctx["readOnlyRootFilesystem"] is True
        assert ctx["allowPrivilegeEscalation"] is False
        assert ctx["capabilities"] == {"drop": ["ALL"]}
        assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}
        assert container["resources"]["requests"]


def test_tmp_is_the_only_writable_path(render: Callable[..., list[Manifest]]) -> None:
    docs = render("defaults")
    spec = pod_spec(one(docs, "Deployment"))
    assert spec["containers"][0]["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
    assert "emptyDir" in spec["volumes"][0]
    data_dir = one(docs, "ConfigMap", "soma-somamemory")["data"]["SOMA_DATA_DIR"]
    assert data_dir.startswith("/tmp/")


def test_service_links_are_off_so_redis_port_stays_a_number(
    render: Callable[..., list[Manifest]],
) -> None:
    docs = render("defaults")
    for workload in [one(docs, "Deployment"), one(docs, "Job")]:
        assert pod_spec(workload)["enableServiceLinks"] is False


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_variable_the_chart_sets_is_a_known_setting(
    render: Callable[..., list[Manifest]], scenario: str
) -> None:
    docs = render(scenario)
    known = known_env_vars()
    for container in [api_container(docs), pod_spec(one(docs, "Job"))["containers"][0]]:
        unknown = env_names(docs, container) - known
        assert not unknown, f"{scenario}: {container['name']} sets unknown {sorted(unknown)}"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_api_gets_its_token_database_and_vector_store(
    render: Callable[..., list[Manifest]], scenario: str
) -> None:
    docs = render(scenario)
    names = env_names(docs, api_container(docs))
    assert {"SOMA_API_TOKEN", "POSTGRES_URL", "SOMA_MILVUS_URI", "SOMA_HOST", "SOMA_PORT"} <= names


def test_the_configmap_is_accepted_by_the_settings_object(
    render: Callable[..., list[Manifest]], monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = render("ha")
    for key, value in one(docs, "ConfigMap", "soma-somamemory")["data"].items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("POSTGRES_URL", "postgresql://u:p@db:5432/somamemory")
    settings = Settings()
    assert settings.host == "0.0.0.0"
    assert settings.port == 10101
    assert settings.redis_configured and settings.redis_host == "redis.cache.svc"
    assert settings.effective_milvus_uri == "http://milvus-proxy.milvus.svc:19530"
    assert settings.force_hash_embeddings is True
    assert settings.enable_batch_upsert is True
